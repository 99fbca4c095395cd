"""ShardedOptimizer on 2 MPI ranks against one process stepping on the averaged gradients, bitwise.

The reference, precisely: one ordinary lrcore optimizer of the same class and
hyperparameters (clipping and skipping included) over the same parameters,
stepped with the averaged gradients ``(g0 + g1) / dtype(2)``: the two ranks'
gradients added in the parameters' dtype, then divided by the world size in
that dtype (numpy, element by element). Its fused clipping computes the global
norm of those averaged gradients with lrcore.global_norm.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from lrcore.distributed._sharded import unshardable
from rules import RULE_CASES, RULE_IDS

SHARDABLE = [(case, i) for case, i in zip(RULE_CASES, RULE_IDS) if unshardable(case[0].description) is None]
SHARDABLE_CASES = [case for case, _ in SHARDABLE]
SHARDABLE_IDS = [i for _, i in SHARDABLE]

import lrcore
from lrcore.distributed import ShardedOptimizer, flat_parameters
from lrcore.distributed._layout import CHUNK_BYTES

CHUNK32 = CHUNK_BYTES // 4
# With 2 ranks the float32 shard boundary falls inside the chunk of the second tensor,
# so the norm needs the assembled chunk; the last tensor has a single element.
SHAPES = [(37, 3), (CHUNK32 + 11,), (5,), (1,)]


def gradients(shapes, dtypes, step, rank):
    rng = np.random.default_rng(1000 * step + rank)
    return [(rng.standard_normal(shape) * 3.0).astype(dtype) for shape, dtype in zip(shapes, dtypes)]


def averaged(shapes, dtypes, step, world):
    per_rank = [gradients(shapes, dtypes, step, r) for r in range(world)]
    result = []
    for k, dtype in enumerate(dtypes):
        total = per_rank[0][k].copy()
        for r in range(1, world):
            total = total + per_rank[r][k]
        result.append(total / np.dtype(dtype).type(world) if world > 1 else total)
    return result


def initial(shapes, dtypes):
    rng = np.random.default_rng(7)
    return [rng.standard_normal(shape).astype(dtype) for shape, dtype in zip(shapes, dtypes)]


def identical_everywhere(comm, arrays):
    mine = b"".join(a.tobytes() for a in arrays)
    return all(other == mine for other in comm.allgather(mine))


def run_both(comm, optimizer_class, config, shapes, dtypes, steps=3, groups=None, **options):
    """(sharded params, reference params, sharded optimizer, reference optimizer) after `steps` steps."""
    world = comm.Get_size()
    params = initial(shapes, dtypes)
    reference = [p.copy() for p in params]

    def grouped(arrays):
        if groups is None:
            return arrays
        return [{"params": arrays[a:b], **extra} for (a, b), extra in groups]

    sharded = ShardedOptimizer(optimizer_class, grouped(params), comm, **config, **options)
    single = optimizer_class(grouped(reference), **config, **options)
    results = []
    for step in range(steps):
        results.append((sharded.step(gradients(shapes, dtypes, step, comm.Get_rank())),
                        single.step(averaged(shapes, dtypes, step, world))))
    return params, reference, sharded, single, results


@pytest.mark.parametrize("clipping", [None, 1.0], ids=["noclip", "clip"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule,config", SHARDABLE_CASES, ids=SHARDABLE_IDS)
def test_two_ranks_equal_one_process_on_averaged_gradients_bitwise(two_ranks, rule, config, dtype, clipping):
    params, reference, sharded, single, _ = run_both(
        two_ranks, rule.optimizer, config, SHAPES, [dtype] * len(SHAPES), max_grad_norm=clipping)
    same = identical_everywhere(two_ranks, params)
    for mine, expected in zip(params, reference):
        np.testing.assert_array_equal(mine, expected)
    assert same
    assert sharded.step_count == single.step_count == 3
    assert sharded.last_grad_norm == single.last_grad_norm
    if clipping is not None:
        assert sharded.last_grad_norm is not None and sharded.last_grad_norm > clipping  # it did clip


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_groups_schedules_mixed_dtypes_and_every_norm(two_ranks, norm_type):
    shapes = SHAPES + [(CHUNK32 // 4 + 3,), (9, 2)]
    dtypes = [np.float32, np.float32, np.float64, np.float32, np.float64, np.float64]
    groups = [((0, 3), {"lr": lrcore.schedules.CosineAnnealing(0.05, T_max=4)}),
              ((3, 6), {"weight_decay": 0.1, "betas": (0.8, lrcore.schedules.Linear(0.99, 1.0, 0.9, 3))})]
    params, reference, sharded, single, _ = run_both(
        two_ranks, lrcore.AdamW, {"lr": 0.01}, shapes, dtypes, steps=4, groups=groups,
        max_grad_norm=lrcore.schedules.Linear(2.0, 1.0, 0.5, 4), norm_type=norm_type)
    same = identical_everywhere(two_ranks, params)
    for mine, expected in zip(params, reference):
        np.testing.assert_array_equal(mine, expected)
    assert same
    assert sharded.last_grad_norm == single.last_grad_norm
    assert sharded.optimizer.get_last_lr() == single.get_last_lr()


@pytest.mark.parametrize("clipping", [None, 10.0])
def test_a_nonfinite_gradient_on_one_rank_skips_the_step_on_every_rank(two_ranks, clipping):
    comm = two_ranks
    shapes, dtypes = SHAPES, [np.float32] * len(SHAPES)
    params = initial(shapes, dtypes)
    reference = [p.copy() for p in params]
    sharded = ShardedOptimizer(lrcore.Adam, params, comm, lr=0.01, skip_nonfinite=True, max_grad_norm=clipping)
    single = lrcore.Adam(reference, lr=0.01, skip_nonfinite=True, max_grad_norm=clipping)
    outcomes = []
    for step in range(3):
        grads = gradients(shapes, dtypes, step, comm.Get_rank())
        average = averaged(shapes, dtypes, step, 2)
        if step == 1:
            # Only rank 1's gradient is bad, and only in rank 0's shard: the step must still skip everywhere.
            if comm.Get_rank() == 1:
                grads[0][0, 0] = np.inf
            average[0][0, 0] = np.inf
        outcomes.append((sharded.step(grads), single.step(average)))
    same = identical_everywhere(comm, params)
    assert outcomes == [(True, True), (False, False), (True, True)]
    assert sharded.skipped_steps == single.skipped_steps == 1
    assert sharded.step_count == single.step_count == 2
    for mine, expected in zip(params, reference):
        np.testing.assert_array_equal(mine, expected)
    assert same


def snapshot(sharded):
    state = sharded.state_dict()
    return [p.copy() for p in sharded.params], state


def assert_unchanged(before, sharded):
    params, state = before
    for old, new in zip(params, sharded.params):
        np.testing.assert_array_equal(old, new)
    now = sharded.state_dict()
    assert now["optimizer"]["step_count"] == state["optimizer"]["step_count"]
    assert now["optimizer"]["state"].keys() == state["optimizer"]["state"].keys()
    for index, entry in state["optimizer"]["state"].items():
        for name, value in entry.items():
            np.testing.assert_array_equal(now["optimizer"]["state"][index][name], value)


@pytest.mark.parametrize("damage", ["shape", "dtype", "count", "type", "none_on_one_rank"])
def test_a_bad_gradient_on_one_rank_fails_the_step_on_every_rank_and_changes_nothing(two_ranks, damage):
    comm = two_ranks
    shapes, dtypes = SHAPES, [np.float32] * len(SHAPES)
    params = initial(shapes, dtypes)
    sharded = ShardedOptimizer(lrcore.Adam, params, comm, lr=0.01, max_grad_norm=1.0)
    sharded.step(gradients(shapes, dtypes, 0, comm.Get_rank()))
    before = snapshot(sharded)
    grads = gradients(shapes, dtypes, 1, comm.Get_rank())
    if comm.Get_rank() == 1:
        if damage == "shape":
            grads[1] = grads[1][:-1]
        elif damage == "dtype":
            grads[2] = grads[2].astype(np.float64)
        elif damage == "count":
            grads = grads[:-1]
        elif damage == "type":
            grads[0] = grads[0].tolist()
        else:
            grads[3] = None
    expected = TypeError if damage in ("dtype", "type") else ValueError
    raised = None
    try:
        sharded.step(grads)
    except (TypeError, ValueError) as error:
        raised = error
    # The two ranks agree, and a step with good gradients still works afterwards (no rank is stuck).
    after_error = snapshot(sharded)
    sharded.step(gradients(shapes, dtypes, 1, comm.Get_rank()))
    assert isinstance(raised, expected)
    if comm.Get_rank() == 0 and damage != "none_on_one_rank":
        assert "rank 1" in str(raised)
    assert_unchanged(before, type("S", (), {"params": after_error[0], "state_dict": lambda self: after_error[1]})())
    assert sharded.step_count == 2


def test_none_gradients_on_every_rank_skip_that_parameter(two_ranks):
    comm = two_ranks
    shapes, dtypes = SHAPES, [np.float32] * len(SHAPES)
    params = initial(shapes, dtypes)
    reference = [p.copy() for p in params]
    sharded = ShardedOptimizer(lrcore.Adam, params, comm, lr=0.01, max_grad_norm=1.0)
    single = lrcore.Adam(reference, lr=0.01, max_grad_norm=1.0)
    for step in range(3):
        grads = gradients(shapes, dtypes, step, comm.Get_rank())
        average = averaged(shapes, dtypes, step, 2)
        if step != 1:
            grads[1] = average[1] = None  # the split tensor: its chunks leave the norm
        sharded.step(grads)
        single.step(average)
    same = identical_everywhere(comm, params)
    for mine, expected in zip(params, reference):
        np.testing.assert_array_equal(mine, expected)
    assert same
    assert sharded.last_grad_norm == single.last_grad_norm


def test_flat_parameters_are_updated_in_place_and_flat_gradients_sent_as_they_are(two_ranks):
    comm = two_ranks
    shapes, dtypes = SHAPES, [np.float32] * len(SHAPES)
    params = flat_parameters(initial(shapes, dtypes))
    reference = [p.copy() for p in params]
    sharded = ShardedOptimizer(lrcore.SGD, params, comm, lr=0.1, momentum=0.9)
    single = lrcore.SGD(reference, lr=0.1, momentum=0.9)
    base = params[0].base
    for step in range(3):
        grads = flat_parameters(gradients(shapes, dtypes, step, comm.Get_rank()))
        sharded.step(grads)
        single.step(averaged(shapes, dtypes, step, 2))
    same = identical_everywhere(comm, params)
    assert sharded._aliased[np.dtype(np.float32)]
    assert np.shares_memory(sharded._flat[np.dtype(np.float32)], base)
    for mine, expected in zip(params, reference):
        np.testing.assert_array_equal(mine, expected)
    assert same


def test_each_rank_keeps_only_its_shard_of_the_state(two_ranks):
    comm = two_ranks
    shapes, dtypes = SHAPES, [np.float32] * len(SHAPES)
    params = initial(shapes, dtypes)
    sharded = ShardedOptimizer(lrcore.Adam, params, comm, lr=0.01, amsgrad=True)
    sharded.step(gradients(shapes, dtypes, 0, comm.Get_rank()))
    state = sharded.state_dict()
    elements = sum(entry["exp_avg"].size for entry in state["optimizer"]["state"].values())
    everyone = comm.allgather(elements)
    total = sum(int(np.prod(s)) for s in shapes)
    assert sum(everyone) == total and max(everyone) - min(everyone) <= 1
    assert sharded.state_bytes() == 3 * elements * 4  # exp_avg, exp_avg_sq, max_exp_avg_sq of the shard
    assert state["rank"] == comm.Get_rank() and state["world_size"] == 2
    # The shard's state dict loads back into the same rank.
    sharded.load_state_dict(state)
    with pytest.raises(ValueError, match="rank"):
        sharded.load_state_dict({**state, "rank": 1 - comm.Get_rank()})


def test_fewer_elements_than_ranks(two_ranks):
    # One element: rank 1's shard is empty, and still takes part in every collective.
    params, reference, sharded, single, _ = run_both(
        two_ranks, lrcore.Adam, {"lr": 0.1}, [(1,)], [np.float64], max_grad_norm=0.5, skip_nonfinite=True)
    same = identical_everywhere(two_ranks, params)
    np.testing.assert_array_equal(params[0], reference[0])
    assert same
    assert sharded.last_grad_norm == single.last_grad_norm


def test_a_world_of_one_is_the_plain_optimizer(MPI):
    params, reference, sharded, single, results = run_both(
        MPI.COMM_SELF, lrcore.RMSprop, {"lr": 0.01, "centered": True}, SHAPES, [np.float32] * 4, max_grad_norm=1.0)
    for mine, expected in zip(params, reference):
        np.testing.assert_array_equal(mine, expected)
    assert sharded.world_size == 1 and sharded.last_grad_norm == single.last_grad_norm


def test_the_default_communicator_is_the_world(comm):
    sharded = ShardedOptimizer(lrcore.SGD, [np.zeros(3, np.float32)], lr=0.1)
    assert sharded.world_size == comm.Get_size() and sharded.rank == comm.Get_rank()


def test_construction_errors_are_raised_on_every_rank(two_ranks):
    comm = two_ranks
    errors = []
    for make in (
        lambda: ShardedOptimizer(dict, [np.zeros(3, np.float32)], comm),
        lambda: ShardedOptimizer(lrcore.Adam, [np.zeros(3, np.float32)], comm, lr=-1.0 if comm.Get_rank() else 0.1),
        lambda: ShardedOptimizer(lrcore.Adam, [np.zeros(3 + comm.Get_rank(), np.float32)], comm),
    ):
        try:
            make()
            errors.append(None)
        except (TypeError, ValueError) as error:
            errors.append(type(error))
    assert errors == [TypeError, ValueError, ValueError]


@pytest.mark.parametrize("clipping", [None, 1.0])
def test_bytes_sent_per_step_are_the_zero1_minimum_plus_small_messages(two_ranks, clipping):
    comm = two_ranks
    dtypes = [np.float32, np.float64, np.float32, np.float64]
    params = initial(SHAPES, dtypes)
    sharded = ShardedOptimizer(lrcore.Adam, params, comm, lr=0.01, max_grad_norm=clipping)
    sharded.step(gradients(SHAPES, dtypes, 0, comm.Get_rank()))
    sent = sharded.last_step_bytes
    parameter_bytes = sum(p.nbytes for p in params)
    # 2 ranks: half the gradient bytes out in the reduce-scatter, one shard out in the all-gather
    # (together exactly the parameter bytes); the rest is agreement messages and,
    # with clipping, at most one chunk head and the norm partials.
    extra = sent - parameter_bytes
    assert 0 <= extra <= (CHUNK_BYTES + 1024 if clipping else 1024)


def test_the_benchmark_command_verifies_then_reports(two_ranks, capsys, monkeypatch):
    from lrcore.__main__ import main
    from lrcore.distributed import _bench

    status = main(["bench-distributed", "--sizes", "5000", "--steps", "2", "--clip", "1.0", "--threads", "1"])
    printed = capsys.readouterr().out
    # A verification failure is reported, and the exit status says so.
    monkeypatch.setattr(_bench, "_verify", lambda *args: "rank 1: made up")
    failed = main(["bench-distributed", "--sizes", "5000", "--steps", "1", "--threads", "1"])
    failure_printed = capsys.readouterr().out
    assert status == 0 and failed == 1
    if two_ranks.Get_rank() == 0:
        assert "2 process(es)" in printed and "5000" in printed and "FAILED" not in printed
        assert "verification FAILED: rank 1: made up" in failure_printed
    else:
        assert printed == "" and failure_printed == ""


def test_any_world_size_gives_identical_parameters_close_to_one_process(comm):
    # Bitwise agreement with one process is defined for 2 ranks; with more, the ring's fixed
    # summation order differs from the reference's by rounding only, and every rank agrees.
    world = comm.Get_size()
    shapes = SHAPES + [(2, 3)]
    dtypes = [np.float64] * len(shapes)
    params, reference, sharded, single, _ = run_both(comm, lrcore.Adam, {"lr": 0.01}, shapes, dtypes,
                                                     max_grad_norm=1.0)
    same = identical_everywhere(comm, params)
    for mine, expected in zip(params, reference):
        np.testing.assert_allclose(mine, expected, rtol=0, atol=1e-12)
    assert same
    assert sharded.world_size == world
    assert sharded.last_grad_norm == pytest.approx(single.last_grad_norm, rel=1e-12)


@pytest.mark.parametrize("optimizer_class", [lrcore.Adafactor, lrcore.ScheduleFreeAdamW, lrcore.SparseAdam,
                                             lrcore.RowWiseAdagrad])
def test_a_rule_that_cannot_be_cut_is_refused(MPI, optimizer_class):
    param = np.zeros((4, 3), np.float32)
    with pytest.raises(TypeError, match=f"{optimizer_class.__name__} cannot be sharded"):
        ShardedOptimizer(optimizer_class, [param], comm=MPI.COMM_SELF)
    assert not param.any()
