"""Every example runs end to end (tiny settings, in a subprocess) so none of them rots."""
import importlib.util
import os
import re
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO, "examples")

# example -> (tiny command-line arguments, whether it takes --plot)
TINY = {
    "linear_regression.py": ([], True),
    "linear_regression_module.py": (["--epochs", "1000"], False),
    "logistic_regression.py": (["--epochs", "20", "--n", "200"], True),
    "mlp_digits.py": (["--epochs", "1", "--batch-size", "128"], True),
    "cnn_digits.py": (["--epochs", "1", "--batch-size", "128"], True),
    "dp_digits.py": (["--epochs", "1"], True),
    "text_classification.py": (["--epochs", "2", "--n", "500"], True),
    "newton_hessian.py": (["--samples", "300", "--features", "5", "--many-features", "30"], True),
    "sequence_classification.py": (["--epochs", "1", "--train-size", "128", "--test-size", "64", "--length",
                                    "10", "--batch-size", "64"], True),
    "property_testing.py": ([], False),
    "keyword_spotting.py": (["--epochs", "3", "--n", "960", "--lr", "0.01"], True),
    "translation.py": (["--epochs", "1", "--train-size", "256", "--test-size", "64"], True),
    "interpret_digits.py": (["--epochs", "1", "--batch-size", "128", "--steps", "8", "--samples", "2", "--out",
                             os.path.join(tempfile.gettempdir(), "funcgrad_interpret_digits.png")], False),
}
NEEDS_SKLEARN = {"dp_digits.py", "mlp_digits.py", "cnn_digits.py", "interpret_digits.py"}
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def run(script, *args, timeout=120, cmd=None):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = cmd or [sys.executable, os.path.join(EXAMPLES, script), *args]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def number_after(pattern, text):
    match = re.search(pattern + r"\s*(-?[0-9.]+(?:e[-+]?[0-9]+)?)", text)
    assert match, f"no {pattern!r} in:\n{text}"
    return float(match.group(1))


def test_every_example_is_exercised():
    scripts = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".py") and not f.startswith("_"))
    assert scripts == sorted(TINY), "add tiny settings for new examples to TINY"


@pytest.mark.parametrize("script", sorted(TINY))
def test_example_runs(script, tmp_path):
    if script in NEEDS_SKLEARN:
        pytest.importorskip("sklearn")
    args, plots = TINY[script]
    png = tmp_path / "curves.png"
    out = run(script, *args, *(["--plot", str(png)] if plots else []))
    if plots and HAS_MATPLOTLIB:
        assert png.stat().st_size > 0
    CHECKS.get(script, lambda out: None)(out)


def check_linear(out):
    # the full default run: 2000 epochs, the loss printed every 10% of them
    assert len(re.findall(r"^epoch +\d+/2000 +loss", out, re.MULTILINE)) == 10
    assert number_after("prediction for x = 4:", out) == pytest.approx(8.0, abs=0.1)


def check_linear_module(out):
    # the PyTorch primer's prints: "Epoch [k/N], Loss: ..." every 10% of the epochs
    assert len(re.findall(r"^Epoch \[\d+/1000\], Loss: \d", out, re.MULTILINE)) == 10
    assert number_after("Prediction for x=4:", out) == pytest.approx(8.0, abs=0.05)


def test_linear_regression_module_default_run_is_the_primer_s():
    out = run("linear_regression_module.py")
    assert re.search(r"^Epoch \[10/100\], Loss: \d+\.\d{4}$", out, re.MULTILINE)
    assert re.search(r"^Epoch \[100/100\], Loss: ", out, re.MULTILINE)
    assert 7.5 < number_after("Prediction for x=4:", out) < 8.5


def test_mlp_digits_as_modules():
    pytest.importorskip("sklearn")
    out = run("mlp_digits.py", "--module", "--epochs", "2", "--batch-size", "64")
    check_accuracy(80.0)(out)


def check_accuracy(minimum):
    def check(out):
        assert "examples/s" in out
        assert number_after("held-out accuracy:", out) >= minimum
    return check


def check_newton(out):
    assert number_after(r"full Hessian: \|gradient\|", out) < 1e-8
    assert number_after(r"Hessian-vector products: \|gradient\|", out) < 1e-8


CHECKS = {
    "linear_regression.py": check_linear,
    "linear_regression_module.py": check_linear_module,
    "logistic_regression.py": check_accuracy(90.0),
    "mlp_digits.py": check_accuracy(50.0),
    "cnn_digits.py": check_accuracy(20.0),
    "dp_digits.py": check_accuracy(30.0),
    "text_classification.py": check_accuracy(60.0),
    "newton_hessian.py": check_newton,
    "keyword_spotting.py": check_accuracy(40.0),
}


def test_interpret_digits_trains_saves_loads_and_attributes(tmp_path):
    pytest.importorskip("sklearn")
    ck, png = tmp_path / "cnn.fgck", tmp_path / "maps.png"
    first = run("interpret_digits.py", "--epochs", "2", "--checkpoint", str(ck), "--out", str(png))
    assert "saved the trained CNN" in first and ck.stat().st_size > 0
    second = run("interpret_digits.py", "--checkpoint", str(ck), "--out", str(png))
    assert "loaded the trained CNN" in second and "examples/s" not in second
    assert number_after(r"relative to the scores:", second) < 1e-2  # integrated gradients' completeness
    assert png.exists() if HAS_MATPLOTLIB else (tmp_path / "maps.npy").exists()


def test_translation_reaches_its_target():
    out = run("translation.py", "--epochs", "6", "--test-size", "200", timeout=240)
    assert number_after("held-out token accuracy:", out) >= 95.0
    assert number_after("BLEU:", out) >= 80.0
    assert "(reference" in out


def test_keyword_spotting_default_run():
    out = run("keyword_spotting.py")
    check_accuracy(95.0)(out)


@pytest.mark.parametrize("script", sorted(s for s, (_, plots) in TINY.items() if plots))
def test_example_help(script):
    out = run(script, "--help")
    assert "usage:" in out and "--epochs" in out and "--plot" in out


def test_mlp_digits_distributed_on_two_processes():
    pytest.importorskip("sklearn")
    pytest.importorskip("mpi4py")
    from funcgrad import distributed

    try:
        cmd = distributed.mpirun_command(2, sys.executable, os.path.join(EXAMPLES, "mlp_digits.py"),
                                         "--distributed", "--epochs", "1", "--batch-size", "128")
    except distributed.DistributedError as exc:
        pytest.skip(f"no usable MPI launcher: {exc}")
    out = run("mlp_digits.py", cmd=cmd, timeout=180)
    assert "on 2 processes" in out
    assert out.count("held-out accuracy:") == 1 and out.count("epoch 1/1") == 1  # only rank 0 reports
    assert number_after("held-out accuracy:", out) >= 50.0


def test_mlp_digits_logs_to_tensorboard(tmp_path):
    pytest.importorskip("sklearn")
    why = " (in funcgrad's 'tensorboard' extra, not in 'dev': TensorBoard pulls grpcio, werkzeug and more)"
    pytest.importorskip("tensorboardX", reason="--logdir writes with tensorboardX" + why)
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                             reason="TensorBoard's EventAccumulator reads the logs back" + why)
    out = run("mlp_digits.py", "--epochs", "2", "--batch-size", "128", "--logdir", str(tmp_path))
    acc = ea.EventAccumulator(str(tmp_path), size_guidance={kind: 0 for kind in ea.DEFAULT_SIZE_GUIDANCE})
    acc.Reload()
    tags = acc.Tags()
    assert sorted(tags["scalars"]) == ["held_out_accuracy", "loss"]
    for tag in tags["scalars"]:  # the values the epoch lines print (4 decimals)
        printed = [float(v) for v in re.findall(rf"{tag.replace('_', ' ')} ([0-9.]+)", out)]
        logged = acc.Scalars(tag)
        assert [e.step for e in logged] == [1, 2] and [e.value for e in logged] == pytest.approx(printed, abs=6e-5)
    final = acc.Scalars("held_out_accuracy")[-1].value
    assert number_after("held-out accuracy:", out) == pytest.approx(100 * final, abs=0.006)  # printed as 86.35%
    # serial(Dense, Relu, Dropout, Dense, Relu, Dropout, Dense): parameters at positions 0, 3 and 6
    assert sorted(tags["histograms"]) == [f"params/{i}/{p}" for i in (0, 3, 6) for p in "bw"]
    assert [e.step for e in acc.Histograms("params/0/w")] == [1, 2]
    assert acc.Histograms("params/0/w")[0].histogram_value.num == 64 * 256
    assert sorted(tags["tensors"]) == ["loss/dot/text_summary", "loss/text_summary"]
    listing = acc.Tensors("loss/text_summary")[0].tensor_proto.string_val[0].decode()
    assert listing.startswith("```\n{ lambda ") and "f32[128,64]" in listing and "dot_general" in listing


def test_logdir_without_tensorboardx_prints_one_line_and_trains(tmp_path):
    script = os.path.join(EXAMPLES, "logistic_regression.py")
    code = ("import runpy, sys; sys.modules['tensorboardX'] = None; sys.path.insert(0, sys.argv[2]); "
            "sys.argv = sys.argv[1:2] + sys.argv[3:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    logdir = tmp_path / "tb"
    out = run("logistic_regression.py", cmd=[sys.executable, "-c", code, script, EXAMPLES, "--epochs", "20",
                                             "--n", "200", "--logdir", str(logdir)])
    notes = [line for line in out.splitlines() if line.startswith("--logdir")]
    assert notes == ["--logdir: tensorboardX is not installed (pip install 'funcgrad[tensorboard]'); not logging"]
    check_accuracy(90.0)(out)
    assert not logdir.exists()


def test_dp_digits_reaches_its_target():
    pytest.importorskip("sklearn")
    from funcgrad import privacy

    out = run("dp_digits.py")
    check_accuracy(90.0)(out)
    final = out.strip().splitlines()[-1]
    eps = number_after("; epsilon", final)
    assert 0 < eps <= 8.0
    per_epoch = [float(e) for e in re.findall(r"epsilon ([0-9.]+)", out)[:-1]]
    assert len(per_epoch) == 12 and per_epoch == sorted(per_epoch) and per_epoch[-1] == pytest.approx(eps, abs=0.005)
    steps, rate = re.search(r"(\d+) steps of sample rate ([0-9.]+)", final).groups()
    assert privacy.epsilon(1.2, float(rate), int(steps), 1e-5) == pytest.approx(eps, abs=0.05)
