"""examples/torch_mlp.py runs (reduced size), learns the digits, and agrees with torch.optim.AdamW."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "torch_mlp.py"


@pytest.fixture(scope="module")
def torch_mlp():
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("torch_mlp", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    import lrcore

    threads, lrcore_threads = torch.get_num_threads(), lrcore.get_num_threads()
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]
        torch.set_num_threads(threads)
        lrcore.set_num_threads(lrcore_threads)


def test_quick_run_learns_the_digits_like_torch(torch_mlp, capsys):
    ours, theirs = torch_mlp.main(["--quick", "--quiet"])
    table = capsys.readouterr().out
    assert ours.name == "lrcore.torch.AdamW" and ours.name in table and theirs.name in table
    for result in (ours, theirs):
        assert len(result.train_loss) == 6
        assert result.train_loss[-1] < 0.5 * result.train_loss[0]
        assert result.test_accuracy > 0.9, result
    assert abs(ours.test_accuracy - theirs.test_accuracy) <= 0.01
    for a, b in zip(ours.model.parameters(), theirs.model.parameters()):
        assert (a - b).abs().max().item() < 1e-3
