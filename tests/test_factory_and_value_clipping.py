"""lrcore.create_optimizer / available_optimizers, and lrcore.clip_grad_value against torch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrcore


def test_available_optimizers_are_the_classes_by_torch_name():
    names = lrcore.available_optimizers()
    assert names == ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "RAdam", "Adamax", "Lion", "Adadelta",
                     "Rprop", "ASGD", "Adafactor", "ScheduleFreeAdamW", "ScheduleFreeSGD", "SparseAdam", "RowWiseAdagrad"]
    assert all(getattr(lrcore, name).__name__ == name for name in names)


@pytest.mark.parametrize("spelling", ["adamw", "AdamW", "ADAMW", " adamw "])
def test_create_optimizer_is_case_insensitive_and_equals_the_class(spelling):
    a, b = np.zeros(5), np.zeros(5)
    made = lrcore.create_optimizer(spelling, [a], lr=0.1, betas=(0.8, 0.9))
    direct = lrcore.AdamW([b], lr=0.1, betas=(0.8, 0.9))
    assert type(made) is lrcore.AdamW
    for _ in range(3):
        made.step([np.ones(5)])
        direct.step([np.ones(5)])
    assert np.array_equal(a, b)


def test_create_optimizer_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match=r"unknown optimizer 'lamb'; available: SGD, Adagrad, RMSprop, Adam, AdamW, NAdam, RAdam, Adamax, Lion"):
        lrcore.create_optimizer("lamb", [np.zeros(3)])
    with pytest.raises(TypeError, match="Adam takes no argument.* lrr; it takes lr, betas"):
        lrcore.create_optimizer("adam", [np.zeros(3)], lrr=0.1)
    with pytest.raises(TypeError, match="name must be a string"):
        lrcore.create_optimizer(None, [np.zeros(3)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lr must be"):
        lrcore.create_optimizer("sgd", [np.zeros(3)], lr=-1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value_clamps_in_place_and_keeps_nan(dtype):
    g = np.array([-3.0, -1.0, -0.25, 0.0, 0.7, 1.0, 9.0, np.nan, np.inf, -np.inf], dtype)
    h = np.linspace(-2, 2, 100_003).astype(dtype)
    expected_g = np.clip(g, dtype(-0.7), dtype(0.7))
    expected_h = np.clip(h, dtype(-0.7), dtype(0.7))
    lrcore.clip_grad_value([g, None, h], 0.7)
    assert np.array_equal(g, expected_g, equal_nan=True) and math.isnan(g[7])
    assert np.array_equal(h, expected_h)


def test_clip_grad_value_refuses_bad_arguments_and_changes_nothing():
    g = np.array([5.0, -5.0])
    for bad, error in [(-1.0, ValueError), (math.nan, ValueError), ("1", TypeError), (None, TypeError)]:
        with pytest.raises(error, match="clip_value must be"):
            lrcore.clip_grad_value([g], bad)
    with pytest.raises(ValueError, match="read-only"):
        readonly = np.array([5.0])
        readonly.flags.writeable = False
        lrcore.clip_grad_value([g, readonly], 1.0)
    assert np.array_equal(g, [5.0, -5.0])
    lrcore.clip_grad_value([g], math.inf)
    assert np.array_equal(g, [5.0, -5.0])


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value_equals_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    grads = [(rng.standard_normal(n) * 3).astype(dtype) for n in (1, 17, 4099)]
    tensors = [torch.zeros(len(g), dtype=torch.float32 if dtype == np.float32 else torch.float64,
                           requires_grad=True) for g in grads]
    for t, g in zip(tensors, grads):
        t.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_(tensors, 1.3)
    lrcore.clip_grad_value(grads, 1.3)
    for t, g in zip(tensors, grads):
        assert np.array_equal(t.grad.numpy(), g)
