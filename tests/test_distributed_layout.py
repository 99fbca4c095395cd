"""The sharding arithmetic of lrcore.distributed, without MPI: shards, pieces, and the global
norm computed rank by rank (every rank simulated in this process) against one process's."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrcore
from lrcore import _core
from lrcore.distributed._layout import CHUNK_BYTES, Layout

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


def test_chunk_size_is_the_native_one():
    # A float32 array of one chunk plus one element gives two partials; of one chunk, one.
    n = CHUNK_BYTES // 4
    assert len(_core.gradients.norm_partials([np.ones(n, np.float32)])[0]) == 1
    assert len(_core.gradients.norm_partials([np.ones(n + 1, np.float32)])[0]) == 2
    assert len(_core.gradients.norm_partials([np.ones(CHUNK_BYTES // 8 + 1, np.float64)])[1]) == 2


@pytest.mark.parametrize("world", [1, 2, 3, 5, 8])
def test_shards_are_balanced_and_pieces_cover_every_element_once(world):
    shapes = [(3, 5), (1,), (0,), (7,), (40,), (2, 2)]
    dtypes = [F32, F64, F32, F32, F64, F32]
    layout = Layout(shapes, dtypes, world)
    for dtype in (F32, F64):
        counts = layout.counts(dtype)
        assert sum(counts) == layout.totals[dtype]
        assert max(counts) - min(counts) <= 1
    for k, size in enumerate(layout.sizes):
        covered = []
        for rank in range(world):
            piece = layout.pieces(rank)[k]
            assert piece.tensor == k and 0 <= piece.begin <= piece.end <= size
            start, stop = layout.shard(rank, dtypes[k])
            if piece.end > piece.begin:
                assert start <= piece.flat_begin and piece.flat_begin + piece.end - piece.begin <= stop
            covered += range(piece.begin, piece.end)
        assert covered == list(range(size))


def test_a_layout_refuses_other_dtypes_and_empty_worlds():
    with pytest.raises(TypeError, match="float32 and float64"):
        Layout([(2,)], [np.dtype(np.float16)], 2)
    with pytest.raises(ValueError, match="world_size"):
        Layout([(2,)], [F32], 0)


def simulated_norm(grads, active, world, norm_type):
    """The norm as `world` ranks compute it (lrcore.distributed.ShardedOptimizer._global_norm),
    with the messages passed by hand."""
    layout = Layout([g.shape for g in grads], [g.dtype for g in grads], world)
    plan = layout.norm_plan(active)
    flat = {d: np.concatenate([g.reshape(-1) for g in grads if g.dtype == d] or [np.zeros(0, d)])
            for d in (F32, F64)}
    shards = {(d, r): flat[d][slice(*layout.shard(r, d))] for d in layout.dtypes_present for r in range(world)}
    everyone = []
    for rank in range(world):
        sources = []
        for dtype in plan.by_dtype:
            counts = plan.receive_counts(dtype, rank)
            parts = []
            for source in range(world):
                destination, head = plan.head(dtype, source, shards[dtype, source])
                if counts[source]:
                    assert destination == rank and len(head) == counts[source]
                    parts.append(head)
                elif destination == rank:
                    assert len(head) == 0
            received = np.concatenate(parts) if parts else np.zeros(0, dtype)
            sources += plan.sources(dtype, rank, shards[dtype, rank], received)
        f32, f64 = _core.gradients.norm_partials(sources, norm_type)
        assert len(f32) + len(f64) == plan.partial_counts()[rank]
        everyone.append(np.concatenate([f32, f64]))
    return _core.gradients.norm_from_partials(*plan.split(np.concatenate(everyone)), norm_type)


CHUNK32, CHUNK64 = CHUNK_BYTES // 4, CHUNK_BYTES // 8


def naive_norm(grads, world, norm_type):
    """What summing each rank's pieces on their own would give: not the norm of one process."""
    layout = Layout([g.shape for g in grads], [g.dtype for g in grads], world)
    f32, f64 = [], []
    for rank in range(world):
        pieces = [g.reshape(-1)[p.begin:p.end] for g, p in zip(grads, layout.pieces(rank))]
        a, b = _core.gradients.norm_partials(pieces, norm_type)
        f32.append(a)
        f64.append(b)
    return _core.gradients.norm_from_partials(np.concatenate(f32), np.concatenate(f64), norm_type)


@pytest.mark.parametrize("world", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_the_norm_of_shards_is_bitwise_the_norm_of_one_process(world, norm_type):
    sizes = [CHUNK32 + 3, 5, 3 * CHUNK32 - 1, 0, CHUNK64 * 2 + 7, 1, CHUNK32 // 3]
    dtypes = [F32, F32, F32, F32, F64, F64, F32]
    naive_differs = False
    for seed in range(16):
        rng = np.random.default_rng(seed)
        grads = [(rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(d) for n, d in zip(sizes, dtypes)]
        active = [True] * len(grads)
        expected = _core.gradients.global_norm(grads, norm_type)
        assert simulated_norm(grads, active, world, norm_type) == expected
        naive_differs |= naive_norm(grads, world, norm_type) != expected
        # Without some tensors (gradient None on every rank): the norm of the others.
        active = [True, False, True, True, False, True, True]
        expected = _core.gradients.global_norm([g if a else None for g, a in zip(grads, active)], norm_type)
        assert simulated_norm(grads, active, world, norm_type) == expected
    # The test can tell: cutting chunks at the shard boundaries changes the rounding (a max cannot).
    if world > 1 and not math.isinf(norm_type):
        assert naive_differs


@pytest.mark.parametrize("world", [2, 3, 6])
def test_shards_smaller_than_a_chunk_still_give_the_exact_norm(world):
    # Every shard lies inside one chunk: rank 0 assembles it from every rank's piece.
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(n).astype(np.float32) for n in (10, 3, 1)]
    assert simulated_norm(grads, [True] * 3, world, 2.0) == _core.gradients.global_norm(grads, 2.0)
    # A NaN anywhere is a NaN norm, as for one process.
    grads[1][2] = np.nan
    assert math.isnan(simulated_norm(grads, [True] * 3, world, 2.0))


def test_the_partials_combine_as_global_norm_does():
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(CHUNK32 * 2 + 5).astype(np.float32), rng.standard_normal(9)]
    for norm_type in (2.0, 1.0, 0.5, math.inf):
        assert _core.gradients.norm_from_partials(
            *_core.gradients.norm_partials(grads, norm_type), norm_type) == lrcore.global_norm(grads, norm_type)
    assert _core.gradients.clip_coefficient(10.0, 1.0) == 1.0 / (10.0 + 1e-6)
    assert _core.gradients.clip_coefficient(0.5, 1.0) == 1.0
    assert _core.gradients.clip_coefficient(math.nan, 1.0) == 1.0
    with pytest.raises(TypeError, match="float32_partials"):
        _core.gradients.norm_from_partials(np.zeros(2, np.float32), np.zeros(0), 2.0)
    with pytest.raises(ValueError, match="norm_type"):
        _core.gradients.norm_partials(grads, -1.0)


def test_which_rules_can_be_sharded_is_read_from_their_descriptions():
    from lrcore._rules import RULES
    from lrcore.distributed._sharded import unshardable

    shardable = {rule.class_name for rule in RULES.values() if unshardable(rule) is None}
    assert shardable == {"SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "RAdam", "Adamax", "Lion", "Adadelta",
                         "Rprop", "ASGD"}
    assert "not shaped like the parameter" in unshardable(RULES["adafactor"])
    assert "not shaped like the parameter" in unshardable(RULES["rowwise_adagrad"])
    assert "train/eval modes" in unshardable(RULES["schedule_free_adamw"])
    assert "row-sparse gradients only" in unshardable(RULES["sparse_adam"])
