"""pytest-benchmark suites of lrcore (not part of ``pytest tests``).

Run: ``pytest bench`` (add ``--benchmark-only``, ``--benchmark-json FILE``,
``--lrcore-sizes 4096,2^20``, ``--lrcore-threads 2``). Every benchmark sets up
its contender with :func:`lrcore.bench.verified_step`, which checks two steps
against lrcore.reference before anything is timed. Benchmarks of one rule and
size share a group, so pytest-benchmark's table compares them directly.
"""

from __future__ import annotations

import pytest

import lrcore
from lrcore.bench import parse_workloads


def pytest_addoption(parser):
    group = parser.getgroup("lrcore", "lrcore benchmark suites")
    group.addoption("--lrcore-sizes", default="4096,65536,2^20",
                    help="element counts or workload names (as python -m lrcore bench --sizes)")
    group.addoption("--lrcore-threads", type=int, default=1, help="threads for lrcore and torch")


def pytest_generate_tests(metafunc):
    if "workload" in metafunc.fixturenames:
        tokens = metafunc.config.getoption("--lrcore-sizes").split(",")
        workloads = [w for w in parse_workloads(tokens) if w.name != "opt-step"]
        metafunc.parametrize("workload", workloads, ids=[w.label for w in workloads])


@pytest.fixture(autouse=True)
def threads(request):
    """Runs every benchmark at --lrcore-threads (lrcore and torch), restoring the previous counts."""
    count = request.config.getoption("--lrcore-threads")
    before = lrcore.get_num_threads()
    lrcore.set_num_threads(count)
    try:
        import torch
    except ImportError:
        torch = None
    torch_before = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(count)
    yield count
    lrcore.set_num_threads(before)
    if torch is not None:
        torch.set_num_threads(torch_before)


def verified_or_skip(contender, rule, workload):
    """The contender's verified step function; skips when it is not installed or has no such configuration."""
    from lrcore.bench import verified_step

    try:
        return verified_step(contender, rule, workload)
    except LookupError as reason:
        pytest.skip(str(reason))
