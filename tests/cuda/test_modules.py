"""A PyTorch-style module trained on the GPU (docs/from_pytorch.md, the device row): the model
put on the device once, a jitted step with device="cuda", results equal to the CPU's."""
import numpy as np

import funcgrad as fg
from funcgrad import optim, random
from funcgrad.nn import modules as nn


def test_module_training_step_on_the_gpu_matches_the_cpu():
    k1, k2 = random.split(random.key(0))
    model = nn.Sequential(nn.Linear(3, 8, key=k1), nn.ReLU(), nn.Linear(8, 1, key=k2))
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    y = np.arange(4, dtype=np.float32).reshape(4, 1)
    opt = optim.sgd(0.1)

    def step(model, state, x, y):
        loss, grads = fg.value_and_grad(lambda m: nn.MSELoss()(m(x), y))(model)
        updates, state = opt.update(grads, state, model)
        return optim.apply_updates(model, updates), state, loss

    cpu = fg.jit(step)
    gpu = fg.jit(step, device="cuda")
    m_cpu, s_cpu = model, opt.init(model)
    m_gpu, s_gpu = fg.device_put((model, opt.init(model)), "cuda")
    for _ in range(3):
        m_cpu, s_cpu, l_cpu = cpu(m_cpu, s_cpu, x, y)
        m_gpu, s_gpu, l_gpu = gpu(m_gpu, s_gpu, x, y)
    assert type(m_gpu) is nn.Sequential
    np.testing.assert_allclose(np.asarray(l_gpu), l_cpu, rtol=1e-5)
    for a, b in zip(fg.tree_util.tree_leaves(m_gpu), fg.tree_util.tree_leaves(m_cpu)):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-6)
