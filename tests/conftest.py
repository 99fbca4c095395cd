"""Shared fixtures: every kernel variant this CPU supports; the bench tests' process state."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

import lrcore


@pytest.fixture(params=lrcore.available_isas())
def each_isa(request):
    """Selects each kernel variant the CPU can run, restoring the previous one afterwards."""
    previous = lrcore.isa()
    lrcore.set_isa(request.param)
    try:
        yield request.param
    finally:
        lrcore.set_isa(previous)


@pytest.fixture
def bench_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Thread count and OMP_WAIT_POLICY as they were: the bench sets the variable for its process."""
    before = lrcore.get_num_threads()
    if "OMP_WAIT_POLICY" in os.environ:
        monkeypatch.setenv("OMP_WAIT_POLICY", os.environ["OMP_WAIT_POLICY"])
    else:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    yield
    lrcore.set_num_threads(before)
