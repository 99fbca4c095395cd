"""What a run will do before it starts, and how far it has got while it runs.

:func:`make_plan` lists the cells (rule x size x threads) and, for each, the
contenders that will be timed; :func:`print_plan` prints that with an
estimate of the wall time and of the memory the largest workload needs.
:class:`Progress` draws a one-line status with an ETA on a terminal (stderr)
and nothing at all anywhere else.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, TextIO, Tuple

from ._contenders import CONTENDERS
from ._mixed import MIXED_CONTENDERS, mixed_unsupported, plan_seconds
from ._rules import Rule
from ._timing import TimingBudget
from ._workloads import EMBEDDING, OPT_STEP, Workload

__all__ = ["Cell", "Plan", "Progress", "format_bytes", "format_duration", "make_plan", "print_plan"]

#: Rough bandwidth lrcore and the roof reach on a large step (bytes/s), for the time estimate only.
_BANDWIDTH = 25e9
#: Rough cost of one step relative to lrcore's, per contender (large steps), for the estimate only.
_SLOWDOWN = {"lrcore": 1.0, "roof": 1.0, "lrcore-1-thread": 1.3, "numpy": 4.0, "numpy-ref": 5.5,
             "torch-loop": 2.5, "torch-foreach": 3.0, "torch-fused": 1.2, "deepspeed": 1.2}
#: Fixed cost of one step call (seconds) plus a cost per array, per contender: small steps are all overhead.
_CALL_SECONDS = {"lrcore": 2e-6, "roof": 2e-6, "lrcore-1-thread": 2e-6, "numpy": 5e-6, "numpy-ref": 8e-6,
                 "torch-loop": 30e-6, "torch-foreach": 40e-6, "torch-fused": 25e-6, "deepspeed": 30e-6}
_ARRAY_SECONDS = {"lrcore": 0.5e-6, "roof": 0.5e-6, "lrcore-1-thread": 0.5e-6, "numpy": 5e-6, "numpy-ref": 7e-6,
                  "torch-loop": 15e-6, "torch-foreach": 6e-6, "torch-fused": 2e-6, "deepspeed": 3e-6}
#: Making the starting arrays (three normal draws) and checking a result, per element (seconds).
_SETUP_SECONDS_PER_ELEMENT = 4e-8


@dataclass
class Cell:
    """One row of the table: a rule on a workload at a thread count, and what it will be timed against."""

    rule: Rule
    workload: Workload
    threads: int
    timed: List[str]                                       # contenders that will run (available, supported)
    skipped: Dict[str, str] = field(default_factory=dict)  # contender -> why not
    estimate: float = 0.0                                  # seconds


@dataclass
class Plan:
    cells: List[Cell]
    opt_step_threads: List[int]
    opt_step_estimate: float
    skipped: Dict[str, str]  # contenders absent altogether -> why

    @property
    def estimate(self) -> float:
        return sum(c.estimate for c in self.cells) + self.opt_step_estimate


def _step_seconds(name: str, workload: Workload, bytes_per_step: int) -> float:
    return (_CALL_SECONDS.get(name, 2e-5) + _ARRAY_SECONDS.get(name, 5e-6) * workload.arrays
            + bytes_per_step / _BANDWIDTH * _SLOWDOWN.get(name, 3.0))


def _group_seconds(names: Sequence[str], workload: Workload, bytes_per_step: int, budget: TimingBudget) -> float:
    """Mirrors measure_interleaved: samples of at least min_sample_seconds, rounds bounded by the budget."""
    per_round = 0.0
    warm_up = 0.0
    for name in names:
        once = _step_seconds(name, workload, bytes_per_step)
        per_round += max(once, budget.min_sample_seconds)
        warm_up += 2 * once
    rounds = min(max(budget.seconds / per_round, budget.min_samples), budget.max_samples)
    return warm_up + rounds * per_round


def estimate_cell(cell: Cell, itemsize: int, budget: TimingBudget) -> float:
    """Seconds one cell takes, roughly: set-up, verification (two steps each) and the timed groups."""
    workload = cell.workload
    size = workload.elements * cell.rule.bytes_per_element(itemsize)
    total = workload.elements * _SETUP_SECONDS_PER_ELEMENT * (3 + len(cell.timed))
    total += 2 * (_step_seconds("numpy-ref", workload, size) + _step_seconds("lrcore", workload, size))
    first = ["lrcore", "roof"] + (["lrcore-1-thread"] if cell.threads > 1 else [])
    total += _group_seconds(first, workload, size, budget)
    for name in cell.timed:
        total += 2 * _step_seconds(name, workload, size) + _group_seconds(["lrcore", name], workload, size, budget)
    return total


def make_plan(rules: Sequence[Rule], workloads: Sequence[Workload], threads: Sequence[int], against: Sequence[str],
              itemsize: int, budget: TimingBudget, mixed: bool = False) -> Plan:
    """The cells of a run; ``mixed``: a 16-bit dtype, whose contenders are lrcore.bench._mixed's."""
    def unavailable(name: str) -> Optional[str]:
        if not mixed:
            return CONTENDERS[name].unavailable()
        contender = MIXED_CONTENDERS.get(name)
        return "not compared with 16-bit parameters" if contender is None else contender.unavailable()

    skipped = {name: reason for name in against if (reason := unavailable(name)) is not None}
    cells: List[Cell] = []
    for rule in rules:
        timed: List[str] = []
        unsupported: Dict[str, str] = {}
        for name in against:
            if name in skipped:
                continue
            reason = mixed_unsupported(name, rule) if mixed else CONTENDERS[name].unsupported(rule)
            if reason is None:
                timed.append(name)
            else:
                unsupported[name] = reason
        for workload in workloads:
            if workload.name in (OPT_STEP, EMBEDDING):  # sections of their own
                continue
            for count in threads:
                cell = Cell(rule, workload, count, list(timed), dict(unsupported))
                cell.estimate = (plan_seconds(rule, workload, count, len(timed), budget) if mixed
                                 else estimate_cell(cell, itemsize, budget))
                cells.append(cell)
    opt_threads = list(threads) if any(w.name == OPT_STEP for w in workloads) else []
    # opt-step: one group of up to five tiny contenders per thread count, near the budget each.
    opt_estimate = len(opt_threads) * (budget.seconds * 1.2 + 0.2)
    if any(w.name == EMBEDDING for w in workloads):
        # Per thread count: the table, gradients and verification (~15 s), then the roof and four
        # groups of up to two contenders.
        opt_estimate += len(threads) * (5 * budget.seconds * 1.5 + 15.0)
    return Plan(cells, opt_threads, opt_estimate, skipped)


def workload_bytes(rule: Rule, workload: Workload, itemsize: int) -> int:
    """Bytes of one contender's parameters and state, plus one gradient, on the workload."""
    return workload.elements * itemsize * (2 + len(rule.state_names))


def peak_bytes(rule: Rule, workload: Workload, itemsize: int) -> int:
    """About the most a case holds at once: the starting params and two gradients, then three
    (params + state) sets: the reference (kept as the expected result), lrcore, and the roof or one
    contender at a time."""
    per_set = workload.elements * itemsize * (1 + len(rule.state_names))
    return workload.elements * itemsize * 3 + 3 * per_set


def format_bytes(count: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count:.0f} B"


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def print_plan(plan: Plan, rules: Sequence[Rule], workloads: Sequence[Workload], threads: Sequence[int],
               against: Sequence[str], itemsize: int, dtype: str, budget: TimingBudget, out: TextIO) -> None:
    """The run announced: what, against whom, how long and how much memory."""
    sized = [w for w in workloads if w.name not in (OPT_STEP, EMBEDDING)]
    print("\nPlan:", file=out)
    print(f"  rules     {', '.join(r.name for r in rules)} ({dtype})", file=out)
    print(f"  sizes     {', '.join(w.name if w.name in (OPT_STEP, EMBEDDING) else w.label for w in workloads)}",
          file=out)
    print(f"  threads   {', '.join(str(t) for t in threads)}", file=out)
    runs = [n for n in against if n not in plan.skipped]
    print(f"  against   {', '.join(runs) if runs else '(lrcore and the roof only)'}", file=out)
    for name, reason in plan.skipped.items():
        print(f"  skipped   {name}: {reason}", file=out)
    # One line per contender and reason: rules a contender skips for different reasons get one line each.
    unsupported: Dict[Tuple[str, str], List[str]] = {}
    for cell in plan.cells:
        for name, reason in cell.skipped.items():
            if cell.rule.name not in unsupported.setdefault((name, reason), []):
                unsupported[(name, reason)].append(cell.rule.name)
    for (name, reason), rule_names in unsupported.items():
        print(f"  skipped   {name} for {', '.join(rule_names)}: {reason}", file=out)
    groups = sum(1 + len(c.timed) for c in plan.cells)
    print(f"  cells     {len(plan.cells)} table rows ({_count(len(rules), 'rule')} x {_count(len(sized), 'size')} x "
          f"{_count(len(threads), 'thread count')}), {groups} timed groups of about {budget.seconds:g} s each"
          + (f", plus opt-step on {len(plan.opt_step_threads)} thread count(s)" if plan.opt_step_threads else "")
          + (f", plus the embedding table on {_count(len(threads), 'thread count')}"
             if any(w.name == EMBEDDING for w in workloads) else ""),
          file=out)
    print(f"  time      about {format_duration(plan.estimate)} (rough: set-up, verification and the timed groups)",
          file=out)
    if sized:
        biggest = max(sized, key=lambda w: w.elements)
        rule = max(rules, key=lambda r: len(r.state_names))
        print(f"  memory    largest workload {biggest.label} ({biggest.elements / 1e6:.3g}M elements): "
              f"{format_bytes(workload_bytes(rule, biggest, itemsize))} of params + grad + state per contender "
              f"({rule.name}), about {format_bytes(peak_bytes(rule, biggest, itemsize))} at peak", file=out)
    out.flush()


class Progress:
    """A status line with an ETA on stderr when it is a terminal; otherwise every method does nothing.

    The ETA scales the plan's estimate of what is left by how the finished
    cells' actual times compared with their estimates.
    """

    def __init__(self, plan: Plan, stream: Optional[TextIO] = None, enabled: Optional[bool] = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty()) if isatty is not None else False
        self.enabled = enabled
        self.plan = plan
        self.total = len(plan.cells)
        self.done = 0
        self.started = time.perf_counter()
        self._estimated_done = 0.0
        self._shown = False
        self._cell = ""
        self._cell_started = self.started

    def start_cell(self, index: int, cell: Cell) -> None:
        self._cell = f"[{index + 1}/{self.total}] {cell.rule.name} {cell.workload.label} {cell.threads} thr"
        self._cell_started = time.perf_counter()

    def start_other(self, label: str) -> None:
        """A step outside the table (the opt-step case)."""
        self._cell = label
        self._cell_started = time.perf_counter()

    def finish_cell(self, cell: Cell) -> None:
        self.done += 1
        self._estimated_done += cell.estimate

    def remaining(self) -> float:
        """Seconds left: the estimate of the cells not finished, scaled by how the finished ones compared,
        less the time already spent on the current one."""
        now = time.perf_counter()
        left = self.plan.estimate - self._estimated_done
        scale = (self._cell_started - self.started) / self._estimated_done if self._estimated_done > 0 else 1.0
        return max(left * scale - (now - self._cell_started), 0.0)

    def phase(self, text: str) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.started
        line = f"{self._cell}: {text}  | {format_duration(elapsed)} elapsed, ETA {format_duration(self.remaining())}"
        self.stream.write("\r\x1b[K" + line[:200])
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Erases the status line (before anything else is printed to the terminal)."""
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False
