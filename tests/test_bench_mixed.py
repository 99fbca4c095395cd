"""``python -m lrcore bench --dtype bfloat16 / float16``: the 16-bit layouts verified, then timed (no timing asserts)."""

from __future__ import annotations

import dataclasses
import functools
import json
import sys

import ml_dtypes
import numpy as np
import pytest

import lrcore
from lrcore.__main__ import main as lrcore_main
from lrcore.bench import _contenders, _mixed
from lrcore.bench._rules import RULES

TINY = ["--seconds", "0.002", "--threads", "1", "--no-progress"]

pytestmark = pytest.mark.usefixtures("bench_environment")


@pytest.fixture(autouse=True)
def fresh_lookups():
    _contenders.clear_caches()
    _mixed.bfloat16.cache_clear()
    yield
    _contenders.clear_caches()
    _mixed.bfloat16.cache_clear()


def bench(*argv: str) -> int:
    return lrcore_main(["bench", *TINY, *argv])


def _rows(path):
    data = json.loads(path.read_text())
    return data, {(case["rule"], case["label"], case["layout"]): case for case in data["cases"]}


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_each_layout_is_verified_and_timed_and_the_json_says_which(dtype, tmp_path, capsys):
    path = tmp_path / "mixed.json"
    status = bench("--dtype", dtype, "--rules", "adam", "--sizes", "1000,7x33",
                   "--against", "torch-fused,deepspeed", "--json", str(path))
    out = capsys.readouterr().out
    assert status == 0, out
    # A rule with a state created on the first step, and one array shape more; no contenders (torch
    # 2.13's fused SGD leaves 16-bit parameters unchanged: verification reports it as a MISMATCH).
    momentum_path = tmp_path / "momentum.json"
    status = bench("--dtype", dtype, "--rules", "momentum", "--sizes", "1000,7x33", "--against", "deepspeed",
                   "--json", str(momentum_path))
    assert status == 0, capsys.readouterr().out
    _, momentum_rows = _rows(momentum_path)
    assert "All results verified" in out and "a fp32 state" in out and "b bf16+SR" in out and "c master" in out
    data, rows = _rows(path)
    assert data["options"]["dtype"] == dtype
    layouts = {layout["name"]: layout for layout in data["options"]["layouts"]}
    assert set(layouts) == {"fp32-state", "bf16-state+sr", "master"}
    assert layouts["bf16-state+sr"]["stochastic_rounding"] and layouts["bf16-state+sr"]["state_dtype"] == "bfloat16"
    assert layouts["master"]["master_weights"] and layouts["fp32-state"]["bytes_per_element"]["adam"] == 22
    assert len(rows) == 2 * 3 and len(momentum_rows) == 2 * 3
    # Adam: read the gradient, read and write the parameter and the two moments (and the master copy).
    for layout, per_element in (("fp32-state", 22), ("bf16-state+sr", 14), ("master", 30)):
        case = rows[("adam", "1000", layout)]
        assert case["status"] == "ok", case["reason"]
        assert case["dtype"] == dtype and case["bytes_per_step"] == per_element * 1000
        assert case["lrcore_seconds"] > 0 and case["roof_seconds"] > 0
        assert abs(case["roof_bytes_per_step"] - case["bytes_per_step"]) <= 36  # the roof moves the same bytes
        f32 = case["contenders"]["lrcore-float32"]
        assert f32["status"] == "ok" and f32["speedup"] > 0
    assert momentum_rows[("momentum", "7x33", "fp32-state")]["bytes_per_step"] == 231 * (2 + 4 + 8)
    assert momentum_rows[("momentum", "7x33", "bf16-state+sr")]["bytes_per_step"] == 231 * (2 + 4 + 4)
    assert all(case["status"] == "ok" for case in momentum_rows.values())
    assert rows[("adam", "1000", "fp32-state")]["deviation"] == 0.0  # bitwise
    # DeepSpeed compares Adam and AdamW only: momentum has a reason, not a result.
    if _mixed.MIXED_CONTENDERS["deepspeed"].unavailable() is None:
        assert rows[("adam", "1000", "fp32-state")]["contenders"]["deepspeed"]["status"] == "ok"
        assert "Adam and AdamW only" in momentum_rows[("momentum", "1000", "master")]["contenders"]["deepspeed"][
            "reason"]


def _wrong_learning_rate(monkeypatch):
    real = _mixed._native_hyperparameters
    monkeypatch.setattr(_mixed, "_native_hyperparameters",
                        lambda rule: {**real(rule), "lr": real(rule)["lr"] * 1.01})


def test_a_wrong_update_fails_every_layout_and_nothing_of_it_is_timed(tmp_path, capsys, monkeypatch):
    _wrong_learning_rate(monkeypatch)
    path = tmp_path / "wrong.json"
    status = bench("--dtype", "bfloat16", "--rules", "adam", "--sizes", "4096", "--against", "numpy",
                   "--json", str(path))
    out = capsys.readouterr().out
    assert status == 1 and "FAILED" in out
    data, rows = _rows(path)
    assert data["failed"] is True
    for layout in ("fp32-state", "master"):
        case = rows[("adam", "2^12", layout)]
        assert case["status"] == "FAILED" and "bitwise" in case["reason"] and case["lrcore_seconds"] is None
    # (The stochastic layout is checked by distribution: 1% of an update far below a bfloat16 unit mostly
    # stays between the same two neighbours, which 4096 elements cannot tell apart; see the tests below.)


class _NearestInsteadOfStochastic(_mixed.MixedLrcoreRunner):
    """A stochastic layout that rounds to nearest: every value is still a neighbour of the exact one."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        step = self.step
        self.step = functools.partial(step.func, *step.args, rounding_seed=None)


class _SeedFromThreadCount(_mixed.MixedLrcoreRunner):
    """Stochastic rounding whose seed depends on the thread count at the call: right in distribution,
    but not the same bits on another thread count."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        step = self.step
        stochastic = self.layout.stochastic
        self.step = lambda: step.func(*step.args, rounding_seed=(7 + lrcore.get_num_threads()) if stochastic
                                      else None)


@pytest.mark.parametrize("runner, message", [(_NearestInsteadOfStochastic, "standard deviations"),
                                             (_SeedFromThreadCount, "differ between")])
def test_the_stochastic_layout_is_checked_by_distribution_and_by_repeating_it(runner, message, tmp_path, capsys,
                                                                              monkeypatch):
    monkeypatch.setattr(_mixed, "MixedLrcoreRunner", runner)
    path = tmp_path / "sr.json"
    assert bench("--dtype", "bfloat16", "--rules", "adam", "--sizes", "65536", "--against", "numpy",
                 "--json", str(path)) == 1
    _, rows = _rows(path)
    case = rows[("adam", "2^16", "bf16-state+sr")]
    assert case["status"] == "FAILED" and message in case["reason"], case["reason"]
    assert case["lrcore_seconds"] is None
    assert rows[("adam", "2^16", "fp32-state")]["status"] == "ok"  # the nearest layouts are unaffected


def test_a_wrong_contender_is_a_mismatch_and_not_timed(monkeypatch):
    pytest.importorskip("torch")
    torch_fused = _mixed.MIXED_CONTENDERS["torch-fused"]

    def wrong_torch(rule, params):
        arguments = {**rule.torch_arguments, "lr": rule.torch_arguments["lr"] * 1.5}
        return torch_fused.make(dataclasses.replace(rule, torch_arguments=arguments), params)

    monkeypatch.setitem(_mixed.MIXED_CONTENDERS, "torch-fused", dataclasses.replace(torch_fused, make=wrong_torch))
    from lrcore.bench._runner import Options
    from lrcore.bench._timing import TimingBudget
    from lrcore.bench._workloads import parse_workloads

    workload = parse_workloads(["4096"])[0]
    options = Options([RULES["adam"]], [workload], [1], ["torch-fused"], np.dtype(ml_dtypes.bfloat16),
                      TimingBudget(0.002, 3, 10, 1e-4))
    rows = _mixed.run_mixed_case(RULES["adam"], workload, 1, options)
    for case in rows:
        assert case.status == "ok", case.reason
        entry = case.contenders["torch-fused"]
        assert entry.status == "mismatch" and "units in the last place" in entry.reason
        assert entry.seconds is None


def test_absent_contenders_are_skipped_with_a_reason(tmp_path, capsys, monkeypatch):
    for name in ("torch", "deepspeed", "deepspeed.ops", "deepspeed.ops.adam"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError, installed or not
    _contenders.clear_caches()
    path = tmp_path / "absent.json"
    status = bench("--dtype", "bfloat16", "--rules", "adam", "--sizes", "1000",
                   "--against", "torch-fused,deepspeed,numpy", "--json", str(path))
    out = capsys.readouterr().out
    assert status == 0, out
    assert "skipped   torch-fused: torch is not installed" in out
    assert "skipped   deepspeed: deepspeed is not installed" in out
    assert "skipped   numpy: not compared with 16-bit parameters" in out
    _, rows = _rows(path)
    for case in rows.values():
        assert case["status"] == "ok"
        for name, reason in (("torch-fused", "torch is not installed"), ("deepspeed", "deepspeed is not installed"),
                             ("numpy", "not compared with 16-bit parameters")):
            assert case["contenders"][name]["status"] == "n/a" and case["contenders"][name]["reason"] == reason


def test_bfloat16_without_ml_dtypes_exits_2(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)
    _mixed.bfloat16.cache_clear()
    assert bench("--dtype", "bfloat16", "--sizes", "1000") == 2
    assert "needs ml_dtypes" in capsys.readouterr().err


def test_opt_step_alone_is_refused_for_16_bit(capsys):
    assert bench("--dtype", "float16", "--sizes", "opt-step") == 2
    assert "opt-step" in capsys.readouterr().err


def test_the_roof_moves_exactly_the_layouts_bytes():
    for layout in _mixed.LAYOUTS:
        for rule in ("adam", "sgd", "momentum"):
            per_element = _mixed.layout_bytes_per_element(RULES[rule], layout)
            for n in (1000, 4096, 1 << 20):
                roof = _mixed.MixedRoofRunner([n], per_element, 2)
                assert abs(roof.bytes_per_step - n * per_element) <= 36, (layout.name, rule, n)
                assert roof.deviation() == 0.0
    # When the updates are at most four times the reads, the split of reads and writes is the layout's own.
    assert _mixed.roof_tensors(8000, 24000) == [(2000, 3)]
    assert sum(4 * s * (1 + 2 * u) for s, u in _mixed.roof_tensors(8000, 28000)) == 8000 + 2 * 28000
    assert sum(4 * s for s, _ in _mixed.roof_tensors(8000, 28000)) == 8000


def _stochastic(exact, dtype, rng):
    """numpy's own stochastic rounding of float32 values to bfloat16: add 16 random bits, truncate."""
    bits = exact.view(np.uint32).astype(np.uint64) + rng.integers(0, 1 << 16, exact.size, dtype=np.uint64)
    return (bits >> 16).astype(np.uint16).view(dtype)


def test_the_stochastic_check_accepts_stochastic_rounding_and_refuses_nearest_and_strays():
    rng = np.random.default_rng(5)
    bf16 = np.dtype(ml_dtypes.bfloat16)
    exact = rng.standard_normal(200_000, dtype=np.float32) * 1e-2
    outside, z = _mixed.check_stochastic([_stochastic(exact, bf16, rng)], [exact])
    assert outside == 0 and z < _mixed.STOCHASTIC_Z
    outside, z = _mixed.check_stochastic([exact.astype(bf16)], [exact])  # nearest: neighbours, wrong odds
    assert outside == 0 and z > _mixed.STOCHASTIC_Z
    stray = _stochastic(exact, bf16, rng)
    stray[:10] = (exact[:10] * 1.1).astype(bf16)
    assert _mixed.check_stochastic([stray], [exact])[0] >= 5
    representable = exact.astype(bf16).astype(np.float32)  # exact values must be stored as they are
    assert _mixed.check_stochastic([representable.astype(bf16)], [representable]) == (0, 0.0)
