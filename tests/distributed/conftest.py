"""Tests of lrcore.distributed that need MPI processes: run under the mpich wheel's launcher,

    timeout 300 mpiexec -n 2 python -m pytest tests/distributed -p no:cacheprovider

(as .ci/run does). In the ordinary one-process run (``pytest tests``) they are
skipped with a reason before MPI is initialised, and without mpi4py too; the
sharding arithmetic itself is tested without MPI in tests/test_distributed_layout.py.

Every test runs the same collective calls on every rank, in the same order,
and asserts only after them, so a failure on one rank cannot leave the others
waiting; the outer ``timeout`` turns any deadlock into a failure.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Optional

import pytest

HERE = Path(__file__).resolve().parent


def skip_reason() -> Optional[str]:
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'lrcore[mpi]')"
    if "PMI_RANK" not in os.environ and "OMPI_COMM_WORLD_RANK" not in os.environ:
        return "not launched by mpiexec: run `mpiexec -n 2 python -m pytest tests/distributed` (see .ci/run)"
    return None


def pytest_collection_modifyitems(config: Any, items: Any) -> None:
    reason = skip_reason()
    if reason is None:
        return
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def MPI():
    from mpi4py import MPI

    return MPI


@pytest.fixture
def comm(MPI):
    return MPI.COMM_WORLD


@pytest.fixture
def two_ranks(comm):
    """COMM_WORLD when it has two ranks (the bitwise comparisons are defined for two)."""
    if comm.Get_size() != 2:
        pytest.skip("needs exactly 2 MPI processes")
    return comm
