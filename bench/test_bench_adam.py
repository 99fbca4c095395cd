"""Adam: the full optimizer step on a small array (overhead), and many small arrays in one step."""

from __future__ import annotations

import pytest

from conftest import verified_or_skip
from lrcore.bench import parse_workloads

OPT_STEP = parse_workloads(["opt-step"])[0]
SMALL_ARRAYS = parse_workloads(["small-arrays"])[0]


@pytest.mark.parametrize("contender", ["lrcore-Adam.step", "lrcore", "torch-fused", "torch-foreach", "deepspeed"])
def test_opt_step_overhead(benchmark, contender):
    step = verified_or_skip(contender, "adam", OPT_STEP)
    benchmark.group = f"Adam opt.step, one {OPT_STEP.elements}-element array"
    benchmark(step)


@pytest.mark.parametrize("contender", ["lrcore", "roof", "torch-fused", "torch-foreach", "deepspeed"])
def test_small_arrays(benchmark, contender):
    step = verified_or_skip(contender, "adam", SMALL_ARRAYS)
    benchmark.group = f"Adam {SMALL_ARRAYS.label}"
    benchmark(step)
