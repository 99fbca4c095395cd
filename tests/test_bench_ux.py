"""``python -m lrcore bench`` as a product: plan header, progress, spread, noisy marks, Ctrl-C, skip reasons.

Tiny cases in process with a very short budget; no assertion depends on how
fast or how noisy the machine is (noise is injected as synthetic timings).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import sys
from pathlib import Path
from typing import List

import pytest

import lrcore
from lrcore.bench import _cli, _plan
from lrcore.bench._contenders import CONTENDERS
from lrcore.bench._report import CaseTable, NOISY_LEGEND, format_spread, print_opt_step
from lrcore.bench._runner import NOISY_SPREAD, CaseResult, ContenderResult, OptStepEntry, OptStepResult, noisy
from lrcore.bench._rules import RULES
from lrcore.bench._timing import Samples, relative_iqr
from lrcore.bench._workloads import parse_workloads

TINY = ["--quick", "--seconds", "0.002", "--threads", "1", "--rules", "adam", "--sizes", "1000"]


@pytest.fixture(autouse=True)
def restore_state(bench_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench's record of whether it set OMP_WAIT_POLICY, as it was (and, via
    bench_environment, the thread count and the variable itself)."""
    monkeypatch.setattr(_cli, "_policy_set_by_bench", _cli._policy_set_by_bench)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    _cli.add_arguments(parser)
    return parser.parse_args([*TINY, *argv])


def run(*argv: str, progress: "io.StringIO | None" = None) -> "tuple[int, str]":
    out = io.StringIO()
    status = _cli.run(parse(*argv), out=out, progress_stream=progress)
    return status, out.getvalue()


def test_the_plan_is_printed_before_anything_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    seen: List[str] = []
    real = _cli.run_case

    def spy(*args: object, **kwargs: object) -> CaseResult:
        seen.append(out.getvalue())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_cli, "run_case", spy)
    assert _cli.run(parse("--rules", "adam,sgd", "--against", "numpy"), out=out) == 0
    before_first_case = seen[0]
    for text in ("Plan:", "rules     adam, sgd", "sizes     1000", "threads   1", "against   numpy",
                 "cells     2 table rows", "time      about", "memory    largest workload 1000",
                 "OMP_WAIT_POLICY"):
        assert text in before_first_case, text
    assert "All results verified" in out.getvalue() and "estimated" in out.getvalue()


def test_progress_only_on_a_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    terminal = FakeTerminal()
    status, out = run("--against", "numpy", progress=terminal)
    assert status == 0
    shown = terminal.getvalue()
    assert "[1/1] adam 1000 1 thr" in shown and "ETA" in shown and "vs numpy" in shown
    assert shown.endswith("\r\x1b[K")  # the status line is erased at the end
    assert "ETA" not in out

    pipe = io.StringIO()  # not a terminal: nothing at all
    assert run("--against", "numpy", progress=pipe)[0] == 0
    assert pipe.getvalue() == ""

    path = tmp_path / "r.json"  # default stream: stderr, which is not a terminal under pytest
    assert run("--against", "numpy", "--json", str(path))[0] == 0
    assert capsys.readouterr().err == ""
    json.loads(path.read_text())  # the JSON file holds JSON only

    assert run("--against", "numpy", "--no-progress", progress=FakeTerminal())[0] == 0


def test_json_keeps_its_shape_and_adds_spreads(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    status, _ = run("--rules", "adam", "--sizes", "1000,opt-step", "--against", "numpy", "--json", str(path))
    assert status == 0
    data = json.loads(path.read_text())
    assert data["format"] == "lrcore-bench/1"
    assert {"system", "options", "failed", "cases", "opt_step"} <= set(data)
    assert data["interrupted"] is False and data["noisy_spread"] == NOISY_SPREAD
    case = data["cases"][0]
    for key in ("rule", "workload", "label", "arrays", "elements", "dtype", "threads", "bytes_per_step", "status",
                "deviation", "lrcore_seconds", "roof_seconds", "samples", "contenders", "gigabytes_per_second",
                "time_over_roof", "thread_speedup"):
        assert key in case, key
    assert case["lrcore_spread"] >= 0 and case["roof_spread"] >= 0 and case["one_thread_spread"] is None
    assert isinstance(case["time_over_roof_noisy"], bool)
    numpy_entry = case["contenders"]["numpy"]
    for key in ("status", "seconds", "lrcore_seconds", "speedup", "samples", "deviation"):
        assert key in numpy_entry, key
    assert numpy_entry["spread"] >= 0 and numpy_entry["lrcore_spread"] >= 0
    assert isinstance(numpy_entry["noisy"], bool)
    entry = data["opt_step"][0]["entries"]["lrcore-Adam.step"]
    assert entry["seconds"] > 0 and entry["spread"] >= 0 and "noisy" in entry
    assert data["options"]["estimated_seconds"] >= 0


def test_relative_iqr() -> None:
    assert relative_iqr([1.0]) is None
    assert relative_iqr([2.0] * 9) == 0.0
    spread = relative_iqr([1.0, 2.0, 3.0, 4.0, 5.0])  # quartiles 2 and 4, median 3
    assert spread == pytest.approx(2 / 3)
    assert Samples(times=[1.0, 1.0, 1.0, 1.3]).spread == pytest.approx(0.075)
    assert format_spread(0.034) == "±3%" and format_spread(0.004) == "±0.4%" and format_spread(None) == ""


def _case(lrcore_spread: float, torch_spread: float) -> CaseResult:
    case = CaseResult("adam", "16777216", "2^24", 1, 1 << 24, "float32", 2, 28 << 24, lrcore_seconds=12.2e-3,
                      roof_seconds=11.9e-3, one_thread_seconds=16.3e-3, samples=20, lrcore_spread=lrcore_spread,
                      roof_spread=0.02, one_thread_spread=0.02)
    case.contenders["torch-fused"] = ContenderResult(
        "torch-fused", "ok", seconds=19.5, lrcore_seconds=12.2e-3, samples=20, spread=torch_spread,
        lrcore_spread=lrcore_spread)
    case.contenders["deepspeed"] = ContenderResult("deepspeed", "n/a", "deepspeed is not installed")
    return case


def test_a_noisy_ratio_is_marked_and_explained() -> None:
    # Synthetic rounds: torch's 2-thread team waiting for a busy core now and then.
    torch_rounds = Samples(times=[0.015, 0.016, 0.050, 0.019, 0.9, 0.017, 0.030, 0.8])
    lrcore_rounds = Samples(times=[0.0122, 0.0121, 0.0124, 0.0123, 0.0122, 0.0125])
    assert torch_rounds.spread is not None and torch_rounds.spread > NOISY_SPREAD
    out = io.StringIO()
    table = CaseTable(["torch-fused", "deepspeed"], out)
    table.header()
    noisy_case = _case(lrcore_rounds.spread or 0.0, torch_rounds.spread)
    table.row(noisy_case)
    table.row(_case(0.03, 0.05))
    table.legend()
    lines = out.getvalue().splitlines()
    noisy_row, quiet_row = [line for line in lines if line.startswith("adam")]
    assert "~1598x?" in noisy_row and "12.2 ms ±1%" in noisy_row
    assert "1598x" in quiet_row and "~" not in quiet_row and "?" not in quiet_row and "±3%" in quiet_row
    assert NOISY_LEGEND.splitlines()[0] in lines
    assert noisy_case.contenders["torch-fused"].noisy and not noisy(0.1, 0.1)

    quiet = io.StringIO()
    table = CaseTable(["torch-fused"], quiet)
    table.row(_case(0.03, 0.05))
    table.legend()
    assert "noisy" not in quiet.getvalue()  # no legend without a noisy ratio


def test_opt_step_shows_spread_and_marks_noise() -> None:
    result = OptStepResult(4096, "float32", 1)
    result.entries["lrcore-Adam.step"] = OptStepEntry("lrcore-Adam.step", "lrcore Adam.step(grads)", "ok",
                                                      seconds=5e-6, spread=0.02)
    result.entries["torch-fused"] = OptStepEntry("torch-fused", "torch.optim.Adam(fused=True).step()", "ok",
                                                 seconds=33e-6, spread=0.6)
    out = io.StringIO()
    print_opt_step(result, out)
    assert "5 us ±2%" in out.getvalue() and "~6.6x? faster" in out.getvalue()


def test_ctrl_c_prints_what_finished_and_returns_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = _cli.run_case
    calls: List[str] = []

    def interrupt_second(rule, workload, threads, options, phase):  # type: ignore[no-untyped-def]
        calls.append(rule.name)
        if len(calls) == 2:
            phase("timing")
            raise KeyboardInterrupt
        return real(rule, workload, threads, options, phase)

    monkeypatch.setattr(_cli, "run_case", interrupt_second)
    path = tmp_path / "r.json"
    terminal = FakeTerminal()
    status, out = run("--rules", "sgd,adam,momentum", "--against", "numpy", "--json", str(path), progress=terminal)
    assert status == _cli.INTERRUPTED == 130
    assert calls == ["sgd", "adam"]
    assert "Interrupted (Ctrl-C) after 1 of 3 table rows" in out
    reprinted = out.split("Interrupted (Ctrl-C)")[1]
    assert any(line.startswith("sgd") for line in reprinted.splitlines())
    assert not any(line.startswith(("adam", "momentum")) for line in reprinted.splitlines())
    assert terminal.getvalue().endswith("\r\x1b[K")
    data = json.loads(path.read_text())
    assert data["interrupted"] is True and [c["rule"] for c in data["cases"]] == ["sgd"]


def test_each_absent_contender_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, reason in (("deepspeed", "deepspeed is not installed"), ("torch-fused", "torch is not installed")):
        monkeypatch.setitem(CONTENDERS, name, dataclasses.replace(CONTENDERS[name], unavailable=lambda r=reason: r))
    status, out = run("--rules", "adam,sgd", "--against", "numpy,torch-fused,deepspeed")
    assert status == 0, out
    assert "skipped   deepspeed: deepspeed is not installed" in out
    assert "skipped   torch-fused: torch is not installed" in out
    assert "[deepspeed is not installed]" in out  # in the "Compared with" list too


def test_rule_level_skip_reasons_are_in_the_plan() -> None:
    plan = _plan.make_plan([RULES["sgd"], RULES["adam"]], parse_workloads(["1000"]), [1], ["deepspeed"], 4,
                           _cli.BUDGETS["quick"])
    out = io.StringIO()
    _plan.print_plan(plan, [RULES["sgd"], RULES["adam"]], parse_workloads(["1000"]), [1], ["deepspeed"], 4,
                     "float32", _cli.BUDGETS["quick"], out)
    if "deepspeed" in plan.skipped:
        assert "skipped   deepspeed:" in out.getvalue()
    else:
        reason = CONTENDERS["deepspeed"].unsupported(RULES["sgd"])
        assert reason and f"skipped   deepspeed for sgd: {reason}" in out.getvalue()


def test_estimates_and_memory() -> None:
    budget = _cli.BUDGETS["full"]
    gpt = parse_workloads(["gpt"])[0]
    adam = RULES["adam"]
    assert _plan.workload_bytes(adam, gpt, 4) == gpt.elements * 4 * 4  # param, grad, exp_avg, exp_avg_sq
    assert 3.5e9 < _plan.peak_bytes(adam, gpt, 4) < 4.5e9
    plan = _plan.make_plan(list(RULES.values()), parse_workloads(["4096", "2^24", "gpt"]), [1, 2], ["numpy"], 4,
                           budget)
    assert len(plan.cells) == len(RULES) * 3 * 2
    small, big = plan.cells[0].estimate, plan.cells[-1].estimate
    assert 0 < small < big
    assert _plan.format_duration(75) == "1 min 15 s" and _plan.format_bytes(4.1e9) == "4.1 GB"


def test_omp_wait_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cli, "_policy_set_by_bench", False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    assert "set by you" in _cli.omp_wait_policy() and os.environ["OMP_WAIT_POLICY"] == "active"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch") or object())  # type: ignore[arg-type]
    assert "imported before" in _cli.omp_wait_policy() and "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.delitem(sys.modules, "torch")
    assert "set by the bench" in _cli.omp_wait_policy() and os.environ["OMP_WAIT_POLICY"] == "passive"
    assert "set by the bench" in _cli.omp_wait_policy()  # a second run in the same process says the same


def test_eta_counts_down_and_learns_from_finished_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(_plan.time, "perf_counter", lambda: clock[0])
    workload = parse_workloads(["1000"])[0]
    first, second = (_plan.Cell(RULES["adam"], workload, 1, [], estimate=10.0) for _ in range(2))
    progress = _plan.Progress(_plan.Plan([first, second], [], 0.0, {}), FakeTerminal())
    progress.start_cell(0, first)
    clock[0] = 5.0
    assert progress.remaining() == pytest.approx(15.0)
    clock[0] = 20.0  # the first cell took twice its estimate
    progress.finish_cell(first)
    progress.start_cell(1, second)
    clock[0] = 25.0
    assert progress.remaining() == pytest.approx(15.0)  # 10 s estimated x 2, less 5 s already spent
    progress.phase("vs numpy")
    assert "ETA 15 s" in progress.stream.getvalue()  # type: ignore[attr-defined]
