"""Run a lowered ``Program``: compile its kernels, keep constants and scratch buffers on the GPU,
launch the steps in order and hand back ``DeviceArray`` results."""
from __future__ import annotations

import threading
import warnings

import numpy as np
from numba.core.errors import NumbaPerformanceWarning

from ...core.trace import eval_primitive
from ...device import DeviceArray, cuda_api, to_device
from .module import load_module
from .program import HostStep, Launch


class Executable:
    """``run(args) -> [DeviceArray]`` for one program; intermediate buffers are allocated on the
    first call and reused (calls are serialised by a lock), returned buffers are new each call."""

    def __init__(self, program):
        cuda = self.cuda = cuda_api()
        self.program = program
        mod = load_module(program.source)
        simulated = type(cuda.jit).__module__.startswith("numba.cuda.simulator")
        opts = {} if simulated else {"cache": True}
        self.launchers = {}
        with warnings.catch_warnings():
            # small grids are deliberate here (small arrays); Numba warns about each once
            warnings.simplefilter("ignore", NumbaPerformanceWarning)
            for k in program.kernels:
                fn = cuda.jit(k.signature(), **opts)(getattr(mod, k.name))
                self.launchers[k.name] = fn[k.grid, k.block]
        self.consts = [cuda.to_device(c) for c in program.consts]
        self.scratch = None
        self.lock = threading.Lock()

    def _env(self, args):
        cuda = self.cuda
        prog = self.program
        if self.scratch is None:
            self.scratch = {i: cuda.device_array(s.size, s.dtype) for i, s in enumerate(prog.slots)
                            if s.kind == "scratch"}
        env = dict(self.scratch)
        for i, s in enumerate(prog.slots):
            if s.kind == "input":
                env[i] = _buffer(args[s.index])
            elif s.kind == "const":
                env[i] = self.consts[s.index]
            elif s.kind == "fresh":
                env[i] = cuda.device_array(s.size, s.dtype)
        return env

    def __call__(self, args):
        with self.lock:
            env = self._env(args)
            for step in self.program.steps:
                if isinstance(step, Launch):
                    self.launchers[step.kernel.name](*[env[s] for s in step.kernel.slots])
                else:
                    self._host(step, env)
            outs = []
            for o in self.program.outputs:
                if o[0] == "value":
                    outs.append(to_device(o[1]))
                else:
                    _, slot, aval = o
                    outs.append(DeviceArray(env[slot], aval.shape, aval.dtype))
            return outs

    def _host(self, step: HostStep, env):
        ins = []
        for src in step.inputs:
            if src[0] == "value":
                ins.append(src[1])
            else:
                _, slot, shape = src
                ins.append(DeviceArray(env[slot], shape, self.program.slots[slot].dtype).copy_to_host())
        out = eval_primitive(step.eqn.prim, ins, step.eqn.params)
        outs = out if step.eqn.prim.multiple_results else [out]
        for slot, v, val in zip(step.outputs, step.eqn.outvars, outs):
            env[slot] = to_device(np.asarray(val, dtype=v.aval.dtype)).buf


def _buffer(x):
    """The flat device buffer of an argument (NumPy arrays are copied to the GPU)."""
    if not isinstance(x, DeviceArray):
        x = to_device(x)
    return x.buf
