"""Every update rule against the memory roof, numpy and torch.optim, per size (one group per rule and size)."""

from __future__ import annotations

import pytest

from conftest import verified_or_skip

RULES = ["sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw", "adadelta", "rprop", "asgd", "adafactor"]
CONTENDERS = ["lrcore", "roof", "numpy", "torch-loop", "torch-foreach", "torch-fused"]


@pytest.mark.parametrize("contender", CONTENDERS)
@pytest.mark.parametrize("rule", RULES)
def test_step(benchmark, rule, workload, contender):
    step = verified_or_skip(contender, rule, workload)
    benchmark.group = f"{rule} {workload.label}"
    benchmark(step)
