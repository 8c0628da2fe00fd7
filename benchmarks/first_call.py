"""B5 helper, run in a fresh process: time the first call of the jitted B1 step.

``python -m benchmarks.first_call funcgrad|funcgrad-sync|jax`` prints one JSON line with
``first_call`` (seconds from calling the step to its result) and, for funcgrad's tiered mode,
``compiled`` (seconds until the Numba version is in place).
"""
import json
import sys
import time


def main(impl: str) -> None:
    from benchmarks.workloads import _mlp_data

    params, x, y = _mlp_data((784, 512, 512, 10), 128)
    lr = 0.01
    out = {"impl": impl}
    if impl.startswith("funcgrad"):
        import funcgrad as fg
        import funcgrad.numpy as fnp
        from funcgrad.scipy.special import logsumexp

        fg.config.update("async_compile", impl == "funcgrad")

        def loss(p, x, y):
            h = x
            for i, (w, b) in enumerate(p):
                h = h @ w + b
                if i < len(p) - 1:
                    h = fnp.maximum(h, 0.0)
            return -fnp.mean(fnp.sum(y * (h - logsumexp(h, axis=1)[:, None]), axis=1))

        @fg.jit
        def step(p, x, y):
            val, g = fg.value_and_grad(loss)(p, x, y)
            return [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(p, g)], val

        t0 = time.perf_counter()
        float(step(params, x, y)[1])
        out["first_call"] = time.perf_counter() - t0
        step.wait_compiled()
        out["compiled"] = time.perf_counter() - t0
    else:
        import jax
        import jax.numpy as jnp
        from jax.scipy.special import logsumexp

        def loss(p, x, y):
            h = x
            for i, (w, b) in enumerate(p):
                h = h @ w + b
                if i < len(p) - 1:
                    h = jnp.maximum(h, 0.0)
            return -jnp.mean(jnp.sum(y * (h - logsumexp(h, axis=1)[:, None]), axis=1))

        @jax.jit
        def step(p, x, y):
            val, g = jax.value_and_grad(loss)(p, x, y)
            return [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(p, g)], val

        t0 = time.perf_counter()
        float(step(params, x, y)[1])
        out["first_call"] = time.perf_counter() - t0
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
