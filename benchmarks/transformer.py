"""B7: one training step of a 2-layer Transformer encoder (d = 128, 4 heads, feed-forward 512,
post-norm, ReLU, no dropout), T = 64, batch 32, float32: mean over time, a 10-way linear
classifier, softmax cross-entropy, SGD. funcgrad (``nn.TransformerEncoderLayer`` under
``jit``), JAX (the same math written in ``jax.numpy`` under ``jax.jit``) and PyTorch eager
(``torch.nn.TransformerEncoderLayer``), from the same initial weights.

``python -m benchmarks.run --only B7`` times the steady state with the other workloads;
``python -m benchmarks.transformer first funcgrad|jax`` prints the seconds of the first call in
this process as JSON (run it in fresh processes, as ``python -m benchmarks.transformer`` does:
interleaved rounds, cold caches, medians and the ratio to JAX).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

D, HEADS, FF, T, BATCH, LAYERS, CLASSES, LR = 128, 4, 512, 64, 32, 2, 10, 0.01


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, T, D)).astype(np.float32)
    y = rng.integers(0, CLASSES, BATCH)
    return x, np.eye(CLASSES, dtype=np.float32)[y]


def _params():
    """The weights of both layers and the classifier, PyTorch's layouts, funcgrad's init."""
    from funcgrad import nn, random

    layer = nn.TransformerEncoderLayer(HEADS, FF, dropout=0.0)
    keys = random.split(random.key(0), LAYERS + 1)
    layers = [layer.init(k, (BATCH, T, D))[1] for k in keys[:LAYERS]]
    rng = np.random.default_rng(1)
    head = {"w": rng.normal(0, D ** -0.5, (CLASSES, D)).astype(np.float32), "b": np.zeros(CLASSES, np.float32)}
    return {"layers": layers, "head": head}


def _sgd(params, grads):
    from funcgrad import tree_util

    return tree_util.tree_map(lambda p, g: p - LR * g, params, grads)


def funcgrad_step():
    import funcgrad as fg
    import funcgrad.numpy as fnp
    from funcgrad import nn

    apply = nn.TransformerEncoderLayer(HEADS, FF, dropout=0.0).apply

    def loss(params, x, y):
        h = x
        for p in params["layers"]:
            h = apply(p, h)
        logits = fnp.mean(h, axis=1) @ params["head"]["w"].T + params["head"]["b"]
        return nn.softmax_cross_entropy(logits, y)

    @fg.jit
    def step(params, x, y):
        value, grads = fg.value_and_grad(loss)(params, x, y)
        return _sgd(params, grads), value

    return step


def jax_step():
    import jax
    import jax.numpy as jnp

    def norm(x, p):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / jnp.sqrt(var + 1e-5) * p["scale"] + p["bias"]

    def attention(x, p):
        qkv = x @ p["in_weight"].T + p["in_bias"]
        q, k, v = (qkv[..., i * D:(i + 1) * D].reshape(BATCH, T, HEADS, D // HEADS).transpose(0, 2, 1, 3)
                   for i in range(3))
        w = jax.nn.softmax((q / np.sqrt(D // HEADS)) @ k.transpose(0, 1, 3, 2), axis=-1)
        out = (w @ v).transpose(0, 2, 1, 3).reshape(BATCH, T, D)
        return out @ p["out_weight"].T + p["out_bias"]

    def layer(x, p):
        x = norm(x + attention(x, p["attn"]), p["norm1"])
        f = p["ff"]
        h = jax.nn.relu(x @ f["w1"].T + f["b1"]) @ f["w2"].T + f["b2"]
        return norm(x + h, p["norm2"])

    def loss(params, x, y):
        h = x
        for p in params["layers"]:
            h = layer(h, p)
        logits = h.mean(1) @ params["head"]["w"].T + params["head"]["b"]
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(logits), axis=1))

    @jax.jit
    def step(params, x, y):
        value, grads = jax.value_and_grad(loss)(params, x, y)
        return jax.tree_util.tree_map(lambda p, g: p - LR * g, params, grads), value

    return step


def torch_step(params):
    import torch

    torch.manual_seed(0)
    layers = torch.nn.ModuleList(torch.nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, batch_first=True)
                                 for _ in range(LAYERS))
    head = torch.nn.Linear(D, CLASSES)
    with torch.no_grad():
        for mod, p in zip(layers, params["layers"]):
            a, f = p["attn"], p["ff"]
            mod.self_attn.in_proj_weight.copy_(torch.tensor(a["in_weight"]))
            mod.self_attn.in_proj_bias.copy_(torch.tensor(a["in_bias"]))
            mod.self_attn.out_proj.weight.copy_(torch.tensor(a["out_weight"]))
            mod.self_attn.out_proj.bias.copy_(torch.tensor(a["out_bias"]))
            mod.linear1.weight.copy_(torch.tensor(f["w1"]))
            mod.linear1.bias.copy_(torch.tensor(f["b1"]))
            mod.linear2.weight.copy_(torch.tensor(f["w2"]))
            mod.linear2.bias.copy_(torch.tensor(f["b2"]))
        head.weight.copy_(torch.tensor(params["head"]["w"]))
        head.bias.copy_(torch.tensor(params["head"]["b"]))
    model = torch.nn.ModuleDict({"layers": layers, "head": head}).train()
    opt = torch.optim.SGD(model.parameters(), lr=LR)

    def step(x, y):
        opt.zero_grad()
        h = x
        for mod in layers:
            h = mod(h)
        loss = torch.nn.functional.cross_entropy(head(h.mean(1)), y)
        loss.backward()
        opt.step()
        return loss

    return step


def b7(quick=False):
    """``{implementation: one training step}`` for B7 (workloads.py's convention)."""
    from .workloads import have

    x, y = _data()
    params = _params()
    impls = {}
    step = funcgrad_step()
    state = {"fg": params}

    def fg_run():
        state["fg"], loss = step(state["fg"], x, y)
        float(loss)

    impls["funcgrad"] = fg_run
    if have("jax"):
        import jax

        jstep = jax_step()
        state["jax"] = jax.tree_util.tree_map(jax.numpy.asarray, params)

        def jax_run():
            state["jax"], loss = jstep(state["jax"], x, y)
            float(loss.block_until_ready())

        impls["jax"] = jax_run
    if have("torch"):
        import torch

        tstep = torch_step(params)
        tx, ty = torch.tensor(x), torch.tensor(y.argmax(1))
        impls["pytorch"] = lambda: float(tstep(tx, ty).detach())
    return impls


def first_call(impl):
    """Seconds of the first call of the B7 step (tracing, compiling, running) in this process."""
    x, y = _data()
    params = _params()
    if impl == "funcgrad":
        import funcgrad as fg

        fg.config.update("async_compile", False)
        step = funcgrad_step()
        t0 = time.perf_counter()
        float(step(params, x, y)[1])
    else:
        import jax

        step = jax_step()
        jp = jax.tree_util.tree_map(jax.numpy.asarray, params)
        t0 = time.perf_counter()
        float(step(jp, x, y)[1].block_until_ready())
    return time.perf_counter() - t0


def first_calls(rounds=3):
    """Median first call of funcgrad (cold cache) and JAX in fresh processes, interleaved."""
    root = Path(__file__).resolve().parent.parent
    times = {"funcgrad": [], "jax": []}
    for _ in range(rounds):
        for impl, bucket in times.items():
            with tempfile.TemporaryDirectory() as d:
                env = dict(os.environ, FUNCGRAD_CACHE_DIR=d, NUMBA_CACHE_DIR=os.path.join(d, "numba"),
                           PYTHONPATH=str(root))
                out = subprocess.run([sys.executable, "-m", "benchmarks.transformer", "first", impl], env=env,
                                     capture_output=True, text=True, check=True, cwd=root)
                bucket.append(json.loads(out.stdout.strip().splitlines()[-1])["first_call"])
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["first"]:
        print(json.dumps({"impl": argv[1], "first_call": first_call(argv[1])}))
        return None
    med = first_calls(int(argv[0]) if argv else 3)
    print(f"B7 first call (fresh processes, cold cache): funcgrad {med['funcgrad']:.2f} s, jax {med['jax']:.2f} s, "
          f"{med['funcgrad'] / med['jax']:.2f}x jax")
    return med


if __name__ == "__main__":
    main()
