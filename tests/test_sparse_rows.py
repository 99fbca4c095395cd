"""Row-sparse gradients (lrcore.SparseRows) and the row rules: SGD and Adagrad on sparse rows, SparseAdam,
RowWiseAdagrad. Against torch (sparse COO gradients, with duplicates), against lrcore.reference bitwise on
every ISA and thread count, untouched rows, duplicate order, bad inputs, state_dict, checkpoints, the range test."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

import lrcore
from lrcore import functional, reference
from lrcore.functional import row_state_like

DTYPES = [np.float32, np.float64]
# max |lrcore - torch| / max |torch| after the run (float32 rounding differs where torch sums duplicates
# one by one into the parameter, SGD, or fuses operations; float64 the same at its precision).
RELATIVE_TOLERANCE = {np.float32: 2e-5, np.float64: 1e-13}

# name -> (lrcore class, torch class name, configurations)
TORCH_RULES = {
    "sgd": (lrcore.SGD, "SGD", [dict(lr=0.05), dict(lr=0.05, maximize=True)]),
    "adagrad": (lrcore.Adagrad, "Adagrad", [
        dict(lr=0.05),
        dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1, eps=1e-6, maximize=True),
    ]),
    "sparse_adam": (lrcore.SparseAdam, "SparseAdam", [
        dict(lr=0.01),
        dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, maximize=True),
    ]),
}
TORCH_CASES = [(name, config) for name, (_, _, configs) in TORCH_RULES.items() for config in configs]
TORCH_IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in config.items())}" for name, config in TORCH_CASES]

ROW_CONFIGS = {
    "sgd": dict(lr=0.05, maximize=True),
    "adagrad": dict(lr=0.05, lr_decay=0.01, eps=1e-6, maximize=True),
    "sparse_adam": dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6, maximize=True),
    "rowwise_adagrad": dict(lr=0.05, eps=1e-6, weight_decay=0.1, maximize=True),
}


def sparse_gradient(rng: np.random.Generator, rows: int, row_shape: Tuple[int, ...], count: int, dtype: Any,
                    index_dtype: Any = np.int64, zipf: bool = True) -> lrcore.SparseRows:
    """count Zipf-like row numbers (many duplicates; uniform ones with zipf False) with random values."""
    indices = np.minimum(rng.zipf(1.3, count) - 1, rows - 1) if zipf else rng.integers(0, rows, count)
    indices = rng.permutation(rows)[indices].astype(index_dtype)
    values = (rng.standard_normal((count, *row_shape)) + 0.1).astype(dtype)
    return lrcore.SparseRows(indices, values)


def fresh_state(name: str, param: np.ndarray) -> List[Any]:
    """The functional layer's state arguments of a rule, for one parameter."""
    if name == "sgd":
        return [[None]]
    if name == "adagrad":
        return [[np.zeros_like(param)], np.zeros(1, np.int64)]
    if name == "sparse_adam":
        return [[np.zeros_like(param)], [np.zeros_like(param)], np.zeros(1, np.int64)]
    return [[row_state_like(param)]]


def copy_state(state: List[Any]) -> List[Any]:
    return [[None if a is None else a.copy() for a in item] if isinstance(item, list) else item.copy()
            for item in state]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def assert_same_state(a: List[Any], b: List[Any]) -> None:
    for x, y in zip(a, b):
        if isinstance(x, list):
            for u, v in zip(x, y):
                assert (u is None and v is None) or same_bits(u, v)
        else:
            assert same_bits(x, y)


# ------------------------------------------------------------------ torch --
def relative_error(ours: np.ndarray, theirs: np.ndarray) -> Tuple[float, float]:
    abs_error = float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64))))
    return abs_error, abs_error / max(float(np.max(np.abs(theirs))), 1e-300)


def torch_state_names(name: str) -> Dict[str, str]:
    return {"sgd": {}, "adagrad": {"sum": "sum"},
            "sparse_adam": {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"}}[name]


def run_both(torch, weight, theirs, optimizer, rng, rows, row_shape, batch, steps, embedding, dtype):
    """steps steps of torch's optimizer and lrcore's on the same row-sparse gradients; returns which rows
    some step referenced."""
    touched = np.zeros(rows, bool)
    for _ in range(steps):
        indices = np.minimum(rng.zipf(1.3, batch) - 1, rows - 1)  # many duplicates, in no order
        upstream = (rng.standard_normal((batch, *row_shape)) + 0.1).astype(dtype)
        weight.grad = None
        if embedding is not None:
            (embedding(torch.from_numpy(indices)) * torch.from_numpy(upstream)).sum().backward()
            grad = weight.grad
            assert grad.is_sparse and not grad.is_coalesced()
            gradient = lrcore.SparseRows(grad._indices()[0].numpy().copy(), grad._values().numpy().copy())
        else:
            weight.grad = torch.sparse_coo_tensor(torch.from_numpy(indices)[None], torch.from_numpy(upstream),
                                                  (rows, *row_shape), check_invariants=True)
            gradient = lrcore.SparseRows(indices, upstream)
        theirs.step()
        optimizer.step([gradient])
        touched[indices] = True
    return touched


def torch_errors(torch, name, config, dtype, source, steps=60):
    """Runs lrcore's and torch's optimizer side by side; returns the max (absolute, relative) errors of the
    parameter and of each state array, the rows never referenced, and the run's arrays."""
    lrcore_class, torch_name, _ = TORCH_RULES[name]
    rng = np.random.default_rng(7)
    rows, row_shape, batch = 300, (16,) if source == "embedding" else (3, 5), 96
    initial = rng.standard_normal((rows, *row_shape)).astype(dtype)
    ours = initial.copy()
    optimizer = lrcore_class([ours], **config)
    torch_dtype = torch.float32 if dtype == np.float32 else torch.float64
    if source == "embedding":
        embedding = torch.nn.Embedding(rows, row_shape[0], sparse=True, dtype=torch_dtype)
        with torch.no_grad():
            embedding.weight.copy_(torch.from_numpy(initial))
        weight = embedding.weight
    else:
        weight = torch.nn.Parameter(torch.from_numpy(initial.copy()))
    theirs = getattr(torch.optim, torch_name)([weight], **config)
    # With the invariant checks on (torch warns when they are left implicitly off).
    with torch.sparse.check_sparse_tensor_invariants(enable=True):
        touched = run_both(torch, weight, theirs, optimizer, rng, rows, row_shape, batch, steps,
                           embedding if source == "embedding" else None, dtype)
    torch_weight = weight.detach().numpy()
    state = optimizer.state_dict()["state"][0]
    assert state["step"] == steps
    errors = {"param": relative_error(ours, torch_weight)}
    for ours_name, torch_key in torch_state_names(name).items():
        errors[ours_name] = relative_error(state[ours_name], theirs.state[weight][torch_key].numpy())
    return errors, ~touched, (initial, ours, torch_weight)


@pytest.mark.torch
@pytest.mark.parametrize("source", ["embedding", "by_hand"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name, config", TORCH_CASES, ids=TORCH_IDS)
def test_agrees_with_torch_sparse_gradients(name, config, dtype, source):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    errors, untouched, (initial, ours, theirs) = torch_errors(torch, name, config, dtype, source)
    for array, (_, relative) in errors.items():
        assert relative <= RELATIVE_TOLERANCE[dtype], array
    # Rows no step referenced are exactly as they started, here and in torch.
    assert 0 < untouched.sum() < len(untouched)
    assert same_bits(ours[untouched], initial[untouched])
    assert same_bits(theirs[untouched], initial[untouched])


# -------------------------------------------------------------- reference --
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(ROW_CONFIGS))
def test_bitwise_equal_to_the_reference_on_every_isa_and_thread_count(name, dtype, threads, each_isa):
    rng = np.random.default_rng(3)
    rows, row_shape = 3000, (9, 17)  # a row of 153 elements: vector body and scalar tail
    param = rng.standard_normal((rows, *row_shape)).astype(dtype)
    expected = param.copy()
    state, expected_state = fresh_state(name, param), fresh_state(name, param)
    before = lrcore.get_num_threads()
    lrcore.set_num_threads(threads)
    try:
        for step in range(3):
            gradient = sparse_gradient(rng, rows, row_shape, 6000, dtype, np.int32 if step % 2 else np.int64,
                                       zipf=False)
            # Enough rows touched (the step's threshold: 1 MiB) that the step runs on the pool.
            assert len(np.unique(gradient.indices)) * 153 * param.itemsize > 1 << 20
            getattr(functional, name)([param], [gradient], *state, **ROW_CONFIGS[name])
            getattr(reference, name)([expected], [gradient], *expected_state, **ROW_CONFIGS[name])
            assert same_bits(param, expected)
            assert_same_state(state, expected_state)
    finally:
        lrcore.set_num_threads(before)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(5,), (40, 1), (40, 3), (17, 16), (9, 33), (6, 2, 8), ()])
def test_rowwise_adagrad_dense_is_bitwise_the_reference(shape, dtype, each_isa):
    rng = np.random.default_rng(5)
    param = rng.standard_normal(shape).astype(dtype)
    expected = param.copy()
    state, expected_state = [row_state_like(param)], [row_state_like(expected)]
    for _ in range(4):
        grad = rng.standard_normal(shape).astype(dtype)
        functional.rowwise_adagrad([param], [grad], state, **ROW_CONFIGS["rowwise_adagrad"])
        reference.rowwise_adagrad([expected], [grad], expected_state, **ROW_CONFIGS["rowwise_adagrad"])
    assert same_bits(param, expected)
    assert same_bits(state[0], expected_state[0])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_rowwise_adagrad_follows_its_formula(dtype):
    """Against the formula in float64, written plainly (not the kernels' order)."""
    rng = np.random.default_rng(11)
    param = rng.standard_normal((20, 24)).astype(dtype)
    exact = param.astype(np.float64)
    optimizer = lrcore.RowWiseAdagrad([param], lr=0.05, eps=1e-6, weight_decay=0.1)
    accumulator = np.zeros(20)
    for _ in range(10):
        grad = rng.standard_normal((20, 24)).astype(dtype)
        optimizer.step([grad])
        g = grad.astype(np.float64) + 0.1 * exact
        accumulator += np.mean(g * g, axis=1)
        exact -= 0.05 * g / (np.sqrt(accumulator) + 1e-6)[:, None]
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    assert np.max(np.abs(param - exact)) <= tolerance * np.max(np.abs(exact))
    assert np.allclose(optimizer.state_dict()["state"][0]["sum"], accumulator, rtol=tolerance)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_rowwise_adagrad_sparse_with_every_row_once_equals_dense(dtype):
    rng = np.random.default_rng(2)
    dense, sparse = rng.standard_normal((50, 10)).astype(dtype), None
    sparse = dense.copy()
    a, b = lrcore.RowWiseAdagrad([dense], weight_decay=0.01), lrcore.RowWiseAdagrad([sparse], weight_decay=0.01)
    for _ in range(3):
        grad = rng.standard_normal((50, 10)).astype(dtype)
        order = rng.permutation(50)
        a.step([grad])
        b.step([lrcore.SparseRows(order, grad[order])])
    assert same_bits(dense, sparse)
    assert same_bits(a.state_dict()["state"][0]["sum"], b.state_dict()["state"][0]["sum"])


# --------------------------------------------------- rows, duplicates, ISA --
@pytest.mark.parametrize("name", sorted(ROW_CONFIGS))
def test_untouched_rows_and_their_state_are_bitwise_unchanged(name, each_isa):
    rng = np.random.default_rng(4)
    param = rng.standard_normal((200, 12)).astype(np.float32)
    state = fresh_state(name, param)
    for item in state:  # nonzero state, so an accidental write of any value would show
        if isinstance(item, list) and item[0] is not None:
            item[0][...] = rng.random(item[0].shape).astype(np.float32)
    before, state_before = param.copy(), copy_state(state)
    gradient = sparse_gradient(rng, 200, (12,), 150, np.float32)
    getattr(functional, name)([param], [gradient], *state, **ROW_CONFIGS[name])
    untouched = np.setdiff1d(np.arange(200), gradient.indices)
    touched = np.unique(gradient.indices)
    assert len(untouched) > 0
    assert same_bits(param[untouched], before[untouched])
    assert not np.array_equal(param[touched], before[touched])
    for item, item_before in zip(state, state_before):
        if isinstance(item, list) and item[0] is not None:
            assert same_bits(item[0][untouched], item_before[0][untouched])


@pytest.mark.parametrize("name", sorted(ROW_CONFIGS))
def test_the_order_of_rows_does_not_change_bits(name):
    """Shuffling the entries of a gradient, each row's duplicates kept in their relative order (the order
    they are summed in), gives the same bits; so do int32 and int64 indices."""
    rng = np.random.default_rng(6)
    gradient = sparse_gradient(rng, 100, (9,), 400, np.float64)
    assert len(np.unique(gradient.indices)) < 400 - 50  # many duplicates
    shuffled = rng.permutation(400)
    # a stable sort by a random key per row keeps each row's duplicates in order
    key = rng.permutation(100)[gradient.indices]
    order = np.argsort(key, kind="stable")
    assert not np.array_equal(order, np.arange(400)) and len(shuffled) == 400
    variants = [gradient,
                lrcore.SparseRows(gradient.indices[order], gradient.values[order]),
                lrcore.SparseRows(gradient.indices.astype(np.int32), gradient.values)]
    results = []
    for variant in variants:
        param = np.linspace(-1, 1, 900).reshape(100, 9)
        state = fresh_state(name, param)
        for _ in range(2):
            getattr(functional, name)([param], [variant], *state, **ROW_CONFIGS[name])
        results.append((param, state))
    for param, state in results[1:]:
        assert same_bits(param, results[0][0])
        assert_same_state(state, results[0][1])


def test_duplicates_are_summed_before_the_update():
    """Adagrad is nonlinear: two entries of one row are one update with their sum, not two updates."""
    param = np.zeros((4, 2))
    state = [np.zeros_like(param)]
    functional.adagrad([param], [lrcore.SparseRows([1, 1], np.array([[1.0, 2.0], [3.0, 4.0]]))], state,
                       np.zeros(1, np.int64), lr=1.0)
    g = np.array([4.0, 6.0])
    assert np.array_equal(state[0][1], g * g)
    assert np.array_equal(param[1], -(g / (np.abs(g) + 1e-10)))
    assert not param[[0, 2, 3]].any()


def test_an_empty_sparse_gradient_counts_a_step_and_changes_nothing():
    param = np.ones((5, 3), np.float32)
    optimizer = lrcore.SparseAdam([param])
    optimizer.step([lrcore.SparseRows(np.zeros(0, np.int64), np.zeros((0, 3), np.float32))])
    assert np.array_equal(param, np.ones((5, 3), np.float32))
    assert optimizer.step_count == 1 and optimizer.state_dict()["state"][0]["step"] == 1


def test_dense_and_sparse_parameters_in_one_step():
    rng = np.random.default_rng(8)
    table, bias = rng.standard_normal((30, 4)), rng.standard_normal(4)
    expected_table, expected_bias = table.copy(), bias.copy()
    optimizer = lrcore.Adagrad([table, bias], lr=0.1)
    sums = [np.zeros_like(table), np.zeros_like(bias)]
    steps = np.zeros(2, np.int64)
    for _ in range(3):
        gradient = sparse_gradient(rng, 30, (4,), 20, np.float64)
        bias_grad = rng.standard_normal(4)
        optimizer.step([gradient, bias_grad])
        reference.adagrad([expected_table, expected_bias], [gradient, bias_grad], sums, steps, lr=0.1)
    assert same_bits(table, expected_table) and same_bits(bias, expected_bias)


# ---------------------------------------------------------------- bad input --
def _optimizer_snapshot(optimizer: lrcore.Optimizer, params: List[np.ndarray]) -> Any:
    return [p.copy() for p in params], optimizer.state_dict()


def _assert_unchanged(optimizer: lrcore.Optimizer, params: List[np.ndarray], snapshot: Any) -> None:
    saved_params, saved_state = snapshot
    for p, q in zip(params, saved_params):
        assert same_bits(p, q)
    state = optimizer.state_dict()
    assert state["step_count"] == saved_state["step_count"]
    assert set(state["state"]) == set(saved_state["state"])
    for key, entry in state["state"].items():
        for name, value in entry.items():
            if isinstance(value, np.ndarray):
                assert same_bits(value, saved_state["state"][key][name])
            else:
                assert value == saved_state["state"][key][name]


R, C = 10, 3
BAD_GRADIENTS = [
    ("out of range", lambda: lrcore.SparseRows(np.array([1, R]), np.ones((2, C))), IndexError,
     r"grads\[1\]\.indices\[1\] = 10 is out of range for params\[1\] with 10 rows"),
    ("negative", lambda: lrcore.SparseRows(np.array([-1, 2], np.int32), np.ones((2, C))), IndexError,
     r"grads\[1\]\.indices\[0\] = -1 is out of range"),
    ("values shape", lambda: lrcore.SparseRows(np.array([1, 2]), np.ones((2, C + 1))), ValueError,
     r"grads\[1\]\.values has shape \(2, 4\) but must have shape \(2, 3\)"),
    ("values dtype", lambda: lrcore.SparseRows(np.array([1, 2]), np.ones((2, C), np.float32)), TypeError,
     r"grads\[1\]\.values has dtype float32 but params\[1\] has dtype float64"),
    ("values strided", lambda: lrcore.SparseRows(np.array([1, 2]), np.ones((2, 2 * C))[:, ::2]), ValueError,
     r"grads\[1\]\.values must be C-contiguous"),
    ("indices strided", lambda: lrcore.SparseRows(np.array([1, 5, 2, 5])[::2], np.ones((2, C))), ValueError,
     r"grads\[1\]\.indices must be contiguous"),
]


@pytest.mark.parametrize("case, make, error, message", BAD_GRADIENTS, ids=[c[0] for c in BAD_GRADIENTS])
@pytest.mark.parametrize("name", ["sgd", "adagrad", "sparse_adam", "rowwise_adagrad"])
def test_bad_sparse_gradients_are_refused_and_nothing_changes(name, case, make, error, message):
    """The bad gradient is the second of two: the first, valid, must not be written either."""
    classes = {"sgd": lrcore.SGD, "adagrad": lrcore.Adagrad, "sparse_adam": lrcore.SparseAdam,
               "rowwise_adagrad": lrcore.RowWiseAdagrad}
    params = [np.linspace(0, 1, R * C).reshape(R, C), np.linspace(1, 2, R * C).reshape(R, C)]
    optimizer = classes[name](params, lr=0.1)
    good = lrcore.SparseRows(np.array([0, 3]), np.ones((2, C)))
    optimizer.step([good, good])
    snapshot = _optimizer_snapshot(optimizer, params)
    with pytest.raises(error, match=message):
        optimizer.step([good, make()])
    _assert_unchanged(optimizer, params, snapshot)


def test_a_row_sparse_gradient_of_a_one_dimensional_parameter_is_refused():
    param = np.zeros(5)
    optimizer = lrcore.Adagrad([param])
    with pytest.raises(ValueError, match=r"params\[0\] has shape \(5,\): a row-sparse gradient .* at least 2"):
        optimizer.step([lrcore.SparseRows([1], np.ones((1, 1)))])
    assert optimizer.step_count == 0 and not param.any()


@pytest.mark.parametrize("make, error, message", [
    (lambda: lrcore.SparseRows(np.array([1.0]), np.ones((1, 3))), TypeError, "indices must be an int32 or int64"),
    (lambda: lrcore.SparseRows(np.array([1], np.uint64), np.ones((1, 3))), TypeError, "indices must be an int32"),
    (lambda: lrcore.SparseRows(np.array([[1]]), np.ones((1, 3))), ValueError, "indices must be 1-D"),
    (lambda: lrcore.SparseRows(np.array([1, 2]), np.ones((3, 3))), ValueError, r"values must have shape"),
    (lambda: lrcore.SparseRows(np.array([1]), np.ones(1)), ValueError, r"values must have shape"),
    (lambda: lrcore.SparseRows(np.array([1]), np.ones((1, 3), np.int64)), TypeError, "values must be a float32"),
])
def test_sparse_rows_construction_checks(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_indices_reshaped_after_construction_are_refused_at_the_step():
    param = np.zeros((4, 2))
    gradient = lrcore.SparseRows(np.array([1, 2]), np.ones((2, 2)))
    gradient.indices.shape = (2, 1)
    with pytest.raises(ValueError, match=r"grads\[0\]\.indices must be 1-D"):
        lrcore.SGD([param], lr=0.1).step([gradient])
    assert not param.any()


@pytest.mark.parametrize("make, grad, error, message", [
    (lambda p: lrcore.Adagrad([p], weight_decay=0.1), "sparse", ValueError,
     "weight_decay must be 0 with row-sparse gradients"),
    (lambda p: lrcore.SGD([p], lr=0.1, momentum=0.9), "sparse", ValueError, "momentum must be 0 with row-sparse"),
    (lambda p: lrcore.SGD([p], lr=0.1, weight_decay=0.1), "sparse", ValueError, "weight_decay must be 0"),
    (lambda p: lrcore.SparseAdam([p]), "dense", TypeError,
     r"grads\[0\] must be a row-sparse gradient \(lrcore.SparseRows\): sparse_adam takes no dense gradients"),
    (lambda p: lrcore.Adam([p]), "sparse", TypeError, r"grads\[0\] is a row-sparse gradient .* adam does not"),
    (lambda p: lrcore.RMSprop([p]), "sparse", TypeError, "rmsprop does not take"),
    (lambda p: lrcore.Adagrad([p], max_grad_norm=1.0), "sparse", ValueError,
     r"max_grad_norm \(fused clipping\) does not take row-sparse gradients"),
])
def test_configurations_that_do_not_take_the_gradient_are_refused(make, grad, error, message):
    param = np.ones((6, 2))
    optimizer = make(param)
    snapshot = _optimizer_snapshot(optimizer, [param])
    gradient = lrcore.SparseRows([1, 4], np.ones((2, 2))) if grad == "sparse" else np.ones((6, 2))
    with pytest.raises(error, match=message):
        optimizer.step([gradient])
    _assert_unchanged(optimizer, [param], snapshot)


def test_rowwise_state_of_the_wrong_shape_is_refused():
    param = np.zeros((6, 2))
    with pytest.raises(ValueError, match=r"state_sums\[0\] has shape \(6, 2\) but must have one value per row"):
        functional.rowwise_adagrad([param], [np.ones((6, 2))], [np.zeros((6, 2))])
    assert not param.any()


def test_skip_nonfinite_sees_the_values_of_a_sparse_gradient():
    param = np.ones((6, 2))
    optimizer = lrcore.Adagrad([param], skip_nonfinite=True)
    assert optimizer.step([lrcore.SparseRows([1, 2], np.array([[1.0, np.nan], [1.0, 1.0]]))]) is False
    assert optimizer.skipped_steps == 1 and optimizer.step_count == 0 and np.array_equal(param, np.ones((6, 2)))
    assert optimizer.step([lrcore.SparseRows([1, 2], np.ones((2, 2)))]) is True


# ----------------------------------------------- state_dict, checkpoints, range test --
@pytest.mark.parametrize("make", [lambda p: lrcore.Adagrad(p, lr=0.1, initial_accumulator_value=0.5),
                                  lambda p: lrcore.SparseAdam(p, lr=0.01),
                                  lambda p: lrcore.RowWiseAdagrad(p, lr=0.1)],
                         ids=["adagrad", "sparse_adam", "rowwise_adagrad"])
def test_state_dict_and_checkpoints_continue_a_table_bitwise(make, tmp_path):
    rng = np.random.default_rng(9)
    grads = [sparse_gradient(rng, 40, (6,), 30, np.float32) for _ in range(6)]
    straight = [rng.standard_normal((40, 6)).astype(np.float32)]
    start = [straight[0].copy()]
    optimizer = make(straight)
    for g in grads:
        optimizer.step([g])
    # Halfway through, through state_dict and through a checkpoint file.
    for via in ("state_dict", "checkpoint"):
        params = [start[0].copy()]
        first = make(params)
        for g in grads[:3]:
            first.step([g])
        resumed_params = [np.zeros_like(params[0])]
        resumed = make(resumed_params)
        if via == "state_dict":
            resumed.load_state_dict(first.state_dict(), params=params)
        else:
            path = tmp_path / "table.npz"
            lrcore.save(path, first)
            lrcore.load(path, resumed)
        for g in grads[3:]:
            resumed.step([g])
        assert same_bits(resumed_params[0], straight[0]), via
        for name, value in optimizer.state_dict()["state"][0].items():
            other = resumed.state_dict()["state"][0][name]
            assert same_bits(value, other) if isinstance(value, np.ndarray) else value == other


def test_a_saved_rowwise_state_of_the_wrong_shape_is_refused():
    param = np.zeros((5, 3))
    optimizer = lrcore.RowWiseAdagrad([param])
    state = optimizer.state_dict()
    state["state"] = {0: {"step": 1, "sum": np.zeros((5, 3))}}
    with pytest.raises(ValueError, match=r"state\[0\]\['sum'\] must be a float64 array of shape \(5,\)"):
        optimizer.load_state_dict(state)


def test_the_range_test_restores_a_table_and_its_state():
    rng = np.random.default_rng(10)
    table = rng.standard_normal((64, 8))
    target = rng.standard_normal((64, 8))
    optimizer = lrcore.SparseAdam([table], lr=0.01)
    optimizer.step([sparse_gradient(rng, 64, (8,), 20, np.float64)])
    before_table, before_state = table.copy(), optimizer.state_dict()

    def loss_and_grads():
        rows = rng.integers(0, 64, 16)
        diff = table[rows] - target[rows]
        return float(np.sum(diff * diff)), [lrcore.SparseRows(rows, 2 * diff)]

    result = lrcore.find_lr(optimizer, loss_and_grads, start_lr=1e-4, end_lr=1.0, num_steps=20)
    assert len(result.lrs) > 2
    assert same_bits(table, before_table)
    after = optimizer.state_dict()
    assert after["step_count"] == before_state["step_count"]
    for name in ("exp_avg", "exp_avg_sq"):
        assert same_bits(after["state"][0][name], before_state["state"][0][name])
