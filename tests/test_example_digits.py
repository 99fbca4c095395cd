"""examples/train_digits.py runs (reduced size) and learns the digits."""

from __future__ import annotations

import importlib.util
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


def test_quick_run_learns_the_digits(train_digits, tmp_path, capsys):
    plot = tmp_path / "curves.png"
    results = train_digits.main(["--quick", "--quiet", "--plot", str(plot)])
    table = capsys.readouterr().out
    assert len(results) == 4
    for result in results:
        assert result.name in table
        assert result.range_test is not None and len(result.range_test) > 10
        assert result.suggested_lr is not None and 1e-4 < result.suggested_lr < 10.0
        assert len(result.train_loss) == 12
        assert result.train_loss[-1] < result.train_loss[0]
        assert result.test_accuracy > 0.85, result
    assert max(r.test_accuracy for r in results) > 0.95
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not plot.exists()
    else:
        assert plot.read_bytes().startswith(b"\x89PNG") and plot.stat().st_size > 10_000
