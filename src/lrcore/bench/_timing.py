"""Interleaved timing: contenders take turns, so a noisy neighbour slows them alike.

Every ratio the benchmark reports comes from one call of
:func:`measure_interleaved` over the contenders being compared: each round
runs every contender once (in rotating order), and the report takes medians
over rounds.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

__all__ = ["Timed", "TimingBudget", "measure_interleaved", "median", "relative_iqr"]


@dataclass
class Timed:
    """A function to time, and an optional untimed setup run before each of its samples."""

    name: str
    function: Callable[[], object]  # its result is ignored
    before: Optional[Callable[[], None]] = None


@dataclass(frozen=True)
class TimingBudget:
    """How long to spend measuring one group of interleaved contenders.

    Attributes:
        seconds: target wall time of the timed rounds of one group.
        min_samples, max_samples: bounds on the number of rounds.
        min_sample_seconds: a sample repeats the call until it lasts about this
            long (as timeit does), so tiny calls are not lost in timer noise.
    """

    seconds: float = 0.6
    min_samples: int = 5
    max_samples: int = 200
    min_sample_seconds: float = 1e-3


@dataclass
class Samples:
    """Per-call times (seconds) of one contender: one entry per round."""

    times: List[float] = field(default_factory=list)
    calls_per_sample: int = 1

    @property
    def median(self) -> float:
        return median(self.times)

    @property
    def spread(self) -> Optional[float]:
        """Interquartile range over median of the rounds (see :func:`relative_iqr`)."""
        return relative_iqr(self.times)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def relative_iqr(values: Sequence[float]) -> Optional[float]:
    """The interquartile range of the rounds over their median (0.03 = 3%); None with fewer than 2 rounds.

    Quartiles are the inclusive method (as numpy's default percentile), so 3
    rounds still give a defined, conservative spread.
    """
    if len(values) < 2:
        return None
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    middle = median(values)
    return float((q3 - q1) / middle) if middle > 0 else None


def _time_calls(function: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls


def measure_interleaved(contenders: Sequence[Timed], budget: TimingBudget) -> Dict[str, Samples]:
    """Times every contender over the same rounds; returns per-call times by name.

    Each contender is first called once untimed (warm-up: page faults, lazy
    state) and once timed to size its samples. The garbage collector is off
    while timing.
    """
    results: Dict[str, Samples] = {}
    per_round = 0.0
    for contender in contenders:
        if contender.before:
            contender.before()
        contender.function()
        once = max(_time_calls(contender.function, 1), 1e-7)
        calls = max(1, math.ceil(budget.min_sample_seconds / once))
        results[contender.name] = Samples(calls_per_sample=calls)
        per_round += calls * once
    rounds = int(min(max(budget.seconds / per_round, budget.min_samples), budget.max_samples))
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            for k in range(len(contenders)):
                contender = contenders[(r + k) % len(contenders)]
                samples = results[contender.name]
                if contender.before:
                    contender.before()
                samples.times.append(_time_calls(contender.function, samples.calls_per_sample))
    finally:
        if gc_was_enabled:
            gc.enable()
    return results
