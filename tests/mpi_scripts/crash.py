"""Run under ``mpirun -n 2``: rank 1 raises while rank 0 waits in a barrier.

Without the excepthook that ``init()`` installs, rank 0 would wait forever."""
import time

from funcgrad import distributed as dist

dist.init()
if dist.rank() == 1:
    time.sleep(0.2)
    raise RuntimeError("deliberate failure on rank 1")
dist.barrier()
print("rank 0 got past the barrier", flush=True)
