"""examples/train_digits.py runs (reduced size) and learns the digits."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "train_digits.py"


@pytest.fixture(scope="module")
def train_digits():
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("train_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_gradients_match_finite_differences(train_digits):
    model = train_digits.MLP([5, 4, 3], seed=0)
    model.params = [p.astype(np.float64) for p in model.params]
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    _, grads = model.loss_and_grads(x, y)
    for param, grad in zip(model.params, grads):
        index = (0,) * param.ndim
        saved = param[index]
        param[index] = saved + 1e-6
        up, _ = model.loss_and_grads(x, y)
        param[index] = saved - 1e-6
        down, _ = model.loss_and_grads(x, y)
        param[index] = saved
        assert grad[index] == pytest.approx((up - down) / 2e-6, rel=1e-3, abs=1e-6)


@pytest.fixture(scope="module")
def quick_run(train_digits, tmp_path_factory):
    """One quick run for the tests below: (results, the printed table, the plot's path)."""
    plot = tmp_path_factory.mktemp("digits") / "curves.png"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        results = train_digits.main(["--quick", "--quiet", "--plot", str(plot)])
    return results, out.getvalue(), plot


def test_quick_run_learns_the_digits(quick_run):
    results, table, plot = quick_run
    assert len(results) == 5
    float32_runs = [r for r in results if r.precision == "float32"]
    assert len(float32_runs) == 4
    for result in float32_runs:
        assert result.name in table
        assert result.range_test is not None and len(result.range_test) > 10
        assert result.suggested_lr is not None and 1e-4 < result.suggested_lr < 10.0
        assert len(result.train_loss) == 12
        assert result.train_loss[-1] < result.train_loss[0]
        assert result.test_accuracy > 0.85, result
        assert all(p.dtype == np.float32 for p in result.params)
    assert max(r.test_accuracy for r in results) > 0.95
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not plot.exists()
    else:
        assert plot.read_bytes().startswith(b"\x89PNG") and plot.stat().st_size > 10_000


def test_bfloat16_run_with_master_weights_matches_float32(train_digits, quick_run):
    """The mixed-precision twin: bfloat16 weights, each the float32 master rounded to nearest; the same
    learning rate as its float32 run and a test accuracy within 1 percentage point of it."""
    bfloat16 = np.dtype(train_digits.BFLOAT16)
    results, table, _ = quick_run
    by_name = {r.name: r for r in results}
    name = train_digits.BFLOAT16_CONFIG
    reference, twin = by_name[name], by_name[name + train_digits.BFLOAT16_SUFFIX]
    assert twin.name in table and twin.precision == "bfloat16"
    assert results.index(twin) == results.index(reference) + 1
    assert twin.lr == reference.lr and twin.schedule == reference.schedule
    assert len(twin.train_loss) == 12 and twin.train_loss[-1] < twin.train_loss[0]
    assert abs(twin.test_accuracy - reference.test_accuracy) <= 0.01, (twin.test_accuracy, reference.test_accuracy)
    assert twin.params and all(p.dtype == bfloat16 for p in twin.params)
    state = twin.optimizer.state_dict()["state"]
    assert len(state) == len(twin.params)
    for index, param in enumerate(twin.params):
        master = state[index]["master_weight"]
        assert master.dtype == np.float32 and master.shape == param.shape
        assert np.array_equal(master.astype(bfloat16).view(np.uint16), param.view(np.uint16))
        assert state[index]["exp_avg"].dtype == np.float32
    # The masters hold what bfloat16 cannot: they are not just the parameters widened.
    assert any(not np.array_equal(state[i]["master_weight"], p.astype(np.float32)) for i, p in enumerate(twin.params))


def test_bfloat16_option(train_digits, capsys):
    results = train_digits.main(["--quick", "--epochs", "1", "--quiet", "--plot", "none", "--bfloat16", "none"])
    assert [r.precision for r in results] == ["float32"] * 4
    results = train_digits.main(["--quick", "--epochs", "1", "--quiet", "--plot", "none",
                                 "--bfloat16", "Adam + OneCycle"])
    assert [r.name for r in results if r.precision == "bfloat16"] == ["Adam + OneCycle (bf16)"]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        train_digits.main(["--quick", "--bfloat16", "Lion"])
    assert "--bfloat16 must name one of" in capsys.readouterr().err
