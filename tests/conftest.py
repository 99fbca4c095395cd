"""Shared fixtures: run a test on every kernel variant this CPU supports."""

from __future__ import annotations

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
