"""benchmarks/gpu.py (G1) runs its whole code path at tiny sizes."""
import json

import numpy as np

import funcgrad.numpy as fnp
from benchmarks import gpu
from funcgrad.scipy.special import logsumexp


def test_g1_tiny(tmp_path, capsys):
    out = tmp_path / "g1.json"
    assert gpu.main(["--tiny", "--reps", "2", "--warmup", "0", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["median_s"]["funcgrad"] > 0
    params, x, y = gpu.mlp_data(gpu.TINY_SIZES, gpu.TINY_BATCH)
    want = gpu.mlp_loss(fnp, logsumexp)(params, x, y)
    np.testing.assert_allclose(res["first_loss"]["funcgrad"], float(want), rtol=1e-5)
    assert "funcgrad" in capsys.readouterr().out
