"""Sharded checkpoints: written by 2 ranks and read by 1, written by 1 and read by 2, the run
continuing bitwise as if never interrupted; damage refused on every rank with nothing changed."""

from __future__ import annotations

import os

import numpy as np
import pytest

import lrcore
from lrcore.checkpoint import CheckpointError
from lrcore.distributed import MANIFEST, ShardedOptimizer, load, save

from test_sharded import CHUNK32, gradients, identical_everywhere, initial

SHAPES = [(37, 3), (CHUNK32 + 11,), (5,), (1,), (6,)]
DTYPES = [np.float32, np.float32, np.float64, np.float32, np.float64]


def build(comm, optimizer_class=lrcore.Adam, **config):
    params = initial(SHAPES, DTYPES)
    groups = [{"params": params[:2], "lr": lrcore.schedules.CosineAnnealing(0.05, T_max=6)},
              {"params": params[2:], "weight_decay": 0.1}]
    return params, ShardedOptimizer(optimizer_class, groups, comm, max_grad_norm=2.0, **config)


def average(step):
    return [(a + b) / a.dtype.type(2) for a, b in zip(gradients(SHAPES, DTYPES, step, 0),
                                                      gradients(SHAPES, DTYPES, step, 1))]


@pytest.fixture
def directory(two_ranks, tmp_path_factory):
    """One directory both ranks see (rank 0's temporary directory)."""
    mine = str(tmp_path_factory.mktemp("sharded")) if two_ranks.Get_rank() == 0 else None
    return two_ranks.bcast(mine, root=0)


@pytest.mark.parametrize("optimizer_class,config", [(lrcore.Adam, {"lr": 0.01, "amsgrad": True}),
                                                    (lrcore.SGD, {"lr": 0.05, "momentum": 0.9})],
                         ids=["adam-amsgrad", "sgd-momentum"])
def test_two_ranks_to_one_to_two_continue_bitwise(two_ranks, MPI, directory, optimizer_class, config):
    comm = two_ranks
    rank = comm.Get_rank()
    params, sharded = build(comm, optimizer_class, **config)
    for step in range(2):
        sharded.step(gradients(SHAPES, DTYPES, step, rank))
    save(os.path.join(directory, "two"), sharded)
    for step in range(2, 5):
        sharded.step(gradients(SHAPES, DTYPES, step, rank))
    # Rank 0 alone (a world of one) resumes from the 2-rank checkpoint on the averaged gradients.
    one_matches = None
    if rank == 0:
        alone_params, alone = build(MPI.COMM_SELF, optimizer_class, **config)
        load(os.path.join(directory, "two"), alone)
        assert alone.step_count == 2
        alone.step(average(2))
        save(os.path.join(directory, "one"), alone)
        for step in range(3, 5):
            alone.step(average(step))
        one_matches = all(np.array_equal(a, b) for a, b in zip(alone_params, params)) and \
            alone.last_grad_norm == sharded.last_grad_norm
    # Both ranks resume from the 1-rank checkpoint written after step 3.
    comm.barrier()
    again_params, again = build(comm, optimizer_class, **config)
    load(os.path.join(directory, "one"), again)
    for step in range(3, 5):
        again.step(gradients(SHAPES, DTYPES, step, rank))
    same = identical_everywhere(comm, again_params)
    assert comm.bcast(one_matches, root=0) is True
    for resumed, uninterrupted in zip(again_params, params):
        np.testing.assert_array_equal(resumed, uninterrupted)
    assert same
    assert again.step_count == sharded.step_count == 5
    assert again.optimizer.get_last_lr() == sharded.optimizer.get_last_lr()
    assert again.last_grad_norm == sharded.last_grad_norm


def test_a_new_save_replaces_the_old_shards(two_ranks, directory):
    comm = two_ranks
    params, sharded = build(comm, lr=0.01)
    path = os.path.join(directory, "ckpt")
    save(path, sharded)
    first = sorted(os.listdir(path))
    sharded.step(gradients(SHAPES, DTYPES, 0, comm.Get_rank()))
    save(path, sharded)
    second = sorted(os.listdir(path))
    assert len(first) == len(second) == 3 and MANIFEST in first and MANIFEST in second
    assert not (set(first) - {MANIFEST}) & set(second)


def test_damaged_or_mismatched_checkpoints_fail_on_every_rank_and_change_nothing(two_ranks, directory):
    comm = two_ranks
    rank = comm.Get_rank()
    params, sharded = build(comm, lr=0.01)
    sharded.step(gradients(SHAPES, DTYPES, 0, rank))
    path = os.path.join(directory, "ckpt")
    save(path, sharded)
    sharded.step(gradients(SHAPES, DTYPES, 1, rank))
    before = [p.copy() for p in params]
    state = sharded.state_dict()
    failures = []

    def attempt(optimizer=sharded):
        try:
            load(path, optimizer)
            failures.append(None)
        except (CheckpointError, FileNotFoundError) as error:
            failures.append(type(error))

    # Another optimizer class.
    other = ShardedOptimizer(lrcore.AdamW, [{"params": p} for p in ([q.copy() for q in params[:2]],
                                                                     [q.copy() for q in params[2:]])],
                             comm, lr=0.01)
    attempt(other)
    # One shard truncated (only the rank reading it notices; every rank raises).
    shard = sorted(n for n in os.listdir(path) if n.startswith("shard-"))[1]
    if rank == 0:
        with open(os.path.join(path, shard), "r+b") as file:
            file.truncate(100)
    comm.barrier()
    attempt()
    # No manifest.
    comm.barrier()
    if rank == 0:
        os.unlink(os.path.join(path, MANIFEST))
    comm.barrier()
    attempt()
    assert failures == [CheckpointError, CheckpointError, FileNotFoundError]
    for old, new in zip(before, params):
        np.testing.assert_array_equal(old, new)
    now = sharded.state_dict()
    assert now["optimizer"]["step_count"] == state["optimizer"]["step_count"] == 2
    for index, entry in state["optimizer"]["state"].items():
        for name, value in entry.items():
            np.testing.assert_array_equal(now["optimizer"]["state"][index][name], value)


def test_save_and_load_want_a_sharded_optimizer(tmp_path):
    with pytest.raises(TypeError, match="ShardedOptimizer"):
        save(str(tmp_path), lrcore.SGD([np.zeros(2, np.float32)], lr=0.1))
    with pytest.raises(TypeError, match="ShardedOptimizer"):
        load(str(tmp_path), lrcore.SGD([np.zeros(2, np.float32)], lr=0.1))
