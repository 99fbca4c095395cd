"""The bench's embedding workload (lrcore.bench._embedding) on a small table: verified, timed, reported."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from lrcore.__main__ import main as lrcore_main
from lrcore.bench import _embedding
from lrcore.optim import Adagrad

pytestmark = pytest.mark.usefixtures("bench_environment")


@pytest.fixture
def small_table(monkeypatch):
    """The workload's shape scaled down: 4096 rows, 300 indices, a small roof."""
    monkeypatch.setattr(_embedding, "ROWS", 4096)
    monkeypatch.setattr(_embedding, "INDICES", 300)
    monkeypatch.setattr(_embedding, "ROOF_ELEMENTS", 1 << 12)


def bench(*argv: str) -> int:
    return lrcore_main(["bench", "--quick", "--seconds", "0.002", "--threads", "1", "--rules", "sgd",
                        "--sizes", "embedding", *argv])


def test_the_gradients_are_fixed_zipf_rows():
    a, b = _embedding.embedding_gradients(np.float32, 0, 2), _embedding.embedding_gradients(np.float32, 0, 2)
    assert all(np.array_equal(x.indices, y.indices) and np.array_equal(x.values, y.values) for x, y in zip(a, b))
    indices = a[0].indices
    assert len(indices) == _embedding.INDICES and indices.min() >= 0 and indices.max() < _embedding.ROWS
    _, counts = np.unique(indices, return_counts=True)
    assert counts.max() > 100 and len(counts) > 1000  # a few hot rows, many cold ones
    assert a[0].values.shape == (_embedding.INDICES, _embedding.WIDTH) and a[0].values.dtype == np.float32


def test_every_contender_is_verified_timed_and_written(small_table, tmp_path, capsys):
    pytest.importorskip("torch", reason="torch is not installed")
    path = tmp_path / "result.json"
    status = bench("--against", "torch-loop", "--json", str(path))
    out = capsys.readouterr().out
    assert status == 0, out
    assert "Embedding table: 4096 x 64 float32" in out and "faster than torch-Adagrad" in out
    (result,) = json.loads(path.read_text())["embedding"]
    assert result["status"] == "ok" and result["threads"] == 1
    entries = result["entries"]
    assert set(entries) == {"lrcore-Adagrad", "torch-Adagrad", "lrcore-SparseAdam", "torch-SparseAdam",
                            "lrcore-RowWiseAdagrad", "lrcore-SGD"}
    for name, entry in entries.items():
        assert entry["status"] == "ok" and entry["seconds"] > 0 and entry["gigabytes_per_second"] > 0, name
        assert entry["deviation"] == 0.0 if name.startswith("lrcore") else entry["deviation"] <= 1e-3
    assert entries["lrcore-Adagrad"]["speedup"] > 0 and entries["lrcore-Adagrad"]["versus"] == "torch-Adagrad"
    assert result["roof_gigabytes_per_second"] > 0


def test_bytes_per_step_count_the_rows_touched(small_table):
    gradients = _embedding.embedding_gradients(np.float64, 0, 1)
    distinct = len(np.unique(gradients[0].indices))
    expected = (_embedding.INDICES * 64 + 2 * distinct * 64 * 2) * 8  # values; table and one state, read and written
    assert _embedding._bytes_per_step(gradients, 1.0, 8) == expected


def test_a_wrong_lrcore_step_is_not_timed_and_fails_the_run(small_table, capsys, monkeypatch):
    wrong = dataclasses.replace(_embedding.CONTENDERS[0], make=lambda t: Adagrad([t], lr=2e-2))
    monkeypatch.setattr(_embedding, "CONTENDERS", (wrong,) + _embedding.CONTENDERS[1:])
    assert bench("--against", "numpy") == 1
    out = capsys.readouterr().out
    assert "MISMATCH: differs from lrcore.reference" in out and "lrcore SparseAdam" in out
