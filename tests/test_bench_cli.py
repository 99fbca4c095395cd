"""Smoke tests of ``python -m lrcore bench``: tiny cases in process, no timing assertions."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import lrcore
from lrcore import _core
from lrcore.__main__ import main as lrcore_main
from lrcore.bench import _numpy_fast
from lrcore.bench._workloads import gpt_shapes, parse_workloads

TINY = ["--quick", "--seconds", "0.002", "--threads", "1"]


pytestmark = pytest.mark.usefixtures("bench_environment")


def bench(*argv: str) -> int:
    return lrcore_main(["bench", *TINY, *argv])


def test_tiny_run_verifies_times_and_writes_json(tmp_path, capsys):
    path = tmp_path / "result.json"
    status = bench("--rules", "adam,momentum", "--sizes", "1000", "--against", "numpy,numpy-ref", "--json", str(path))
    out = capsys.readouterr().out
    assert status == 0, out
    assert "All results verified" in out and "ISA" in out and "numpy" in out
    data = json.loads(path.read_text())
    assert data["failed"] is False
    assert data["system"]["isa"] == lrcore.isa()
    cases = {case["rule"]: case for case in data["cases"]}
    assert set(cases) == {"adam", "momentum"}
    adam = cases["adam"]
    assert adam["status"] == "ok" and adam["elements"] == 1000 and adam["bytes_per_step"] == 28 * 1000
    assert adam["lrcore_seconds"] > 0 and adam["roof_seconds"] > 0 and adam["deviation"] <= 1e-3
    assert cases["momentum"]["bytes_per_step"] == 20 * 1000
    for name in ("numpy", "numpy-ref"):
        assert adam["contenders"][name]["status"] == "ok"
        assert adam["contenders"][name]["speedup"] > 0


def test_a_wrong_kernel_is_not_timed_and_fails_the_run(tmp_path, capsys, monkeypatch):
    real_adam = lrcore.functional.adam

    def slightly_wrong_adam(params, grads, *args, **kwargs):
        real_adam(params, grads, *args, **{**kwargs, "lr": kwargs["lr"] * 1.01})

    monkeypatch.setattr(lrcore.functional, "adam", slightly_wrong_adam)
    path = tmp_path / "result.json"
    status = bench("--rules", "adam,sgd", "--sizes", "1000", "--against", "numpy", "--json", str(path))
    out = capsys.readouterr().out
    assert status == 1
    assert "FAILED" in out and "deviates from lrcore.reference" in out
    data = json.loads(path.read_text())
    assert data["failed"] is True
    cases = {case["rule"]: case for case in data["cases"]}
    assert cases["adam"]["status"] == "FAILED" and cases["adam"]["lrcore_seconds"] is None
    assert cases["sgd"]["status"] == "ok"  # the other rule still ran


def test_a_wrong_contender_is_reported_as_mismatch(capsys, monkeypatch):
    monkeypatch.setattr(_numpy_fast.FastNumpyStep, "_sgd", lambda self, params, grads, state: None)
    assert bench("--rules", "sgd", "--sizes", "1000", "--against", "numpy") == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "not timed" in out


def test_opt_step_case(capsys):
    assert bench("--sizes", "opt-step", "--against", "numpy") == 0
    out = capsys.readouterr().out
    assert "lrcore Adam.step(grads)" in out and "lrcore._core.rules.adam.step" in out


@pytest.mark.parametrize("argv", [["--rules", "lamb"], ["--sizes", "huge"], ["--threads", "0"],
                                  ["--against", "jax"]])
def test_bad_arguments_exit_2(argv, capsys):
    assert bench(*argv) == 2
    assert "lrcore bench:" in capsys.readouterr().err


def test_python_m_lrcore_bench_help():
    done = subprocess.run([sys.executable, "-m", "lrcore", "bench", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "--json" in done.stdout


def test_workloads():
    shapes = gpt_shapes()
    assert len(shapes) == 172
    assert 80e6 < sum(int(np.prod(s)) for s in shapes) < 90e6
    assert [w.elements for w in parse_workloads(["2^16", "64k", "65536", "1M"])] == [65536] * 3 + [2**20]
    assert parse_workloads(["small-arrays"])[0].label == "2000x1000"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_roof_stream_adds_the_inputs_to_every_update(dtype, threads):
    lrcore.set_num_threads(threads)
    rng = np.random.default_rng(1)
    sizes = [1, 17, 1000, 70_000]  # tails, and enough in total to use the pool
    inputs = [[rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)] for n in sizes]
    updates = [[rng.standard_normal(n).astype(dtype) for _ in range(4)] for n in sizes]
    expected = [[u + (a + b) for u in us] for (a, b), us in zip(inputs, updates)]
    _core.bench.roof_stream(inputs, updates)
    for got, want in zip(updates, expected):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_roof_stream_checks_its_arrays():
    a, b = np.zeros(8, np.float32), np.zeros(8, np.float32)
    with pytest.raises(ValueError, match="share memory"):
        _core.bench.roof_stream([[a]], [[b, b]])
    with pytest.raises(ValueError, match="dtype and size"):
        _core.bench.roof_stream([[np.zeros(4, np.float32)]], [[b]])
    with pytest.raises(ValueError, match="1 to 4"):
        _core.bench.roof_stream([[a]], [[np.zeros(8, np.float32) for _ in range(5)]])
    with pytest.raises(ValueError, match="read-only"):
        b.flags.writeable = False
        _core.bench.roof_stream([[a]], [[b]])
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.bench.roof_stream([[a]], [[np.zeros(8, np.int32)]])


@pytest.mark.torch
def test_torch_contenders_are_verified_and_timed(tmp_path, capsys):
    pytest.importorskip("torch")
    path = tmp_path / "result.json"
    assert bench("--rules", "adam,rmsprop", "--sizes", "1000,opt-step", "--against",
                 "torch-loop,torch-foreach,torch-fused,deepspeed", "--json", str(path)) == 0, capsys.readouterr().out
    data = json.loads(path.read_text())
    cases = {case["rule"]: case for case in data["cases"]}
    for name in ("torch-loop", "torch-foreach", "torch-fused"):
        assert cases["adam"]["contenders"][name]["status"] == "ok"
    assert cases["rmsprop"]["contenders"]["torch-fused"]["status"] == "n/a"  # torch has no fused RMSprop
    assert data["opt_step"][0]["entries"]["torch-fused"]["seconds"] > 0
