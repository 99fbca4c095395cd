"""Python threads stepping optimizers at once (the kernels run without the GIL)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import lrcore
from lrcore import checkpoint, gradients
from rules import RULE_CASES

# Large enough that every step runs on the thread pool (several chunks per tensor).
SIZE = 1 << 17
STEPS = 12


def problem(seed, rule, config):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(SIZE).astype(np.float32), rng.standard_normal(SIZE // 3 + 1)]
    grads = [[rng.standard_normal(p.shape).astype(p.dtype) for p in params] for _ in range(STEPS)]
    return rule.optimizer(params, **config), params, grads


def run_all(jobs, concurrently):
    barrier = threading.Barrier(len(jobs)) if concurrently else None
    errors = []

    def work(job):
        try:
            if barrier is not None:
                barrier.wait()
            job()
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    if concurrently:
        threads = [threading.Thread(target=work, args=(job,)) for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for job in jobs:
            work(job)
    assert not errors, errors


def stepper(opt, grads, clip):
    def job():
        for g in grads:
            if clip:
                g = [x.copy() for x in g]
                gradients.clip_grad_norm(g, 50.0)
            assert opt.step(g) is True
    return job


# One configuration of every rule, all stepping at once.
CASES = [next((r, c) for r, c in RULE_CASES if r.name == name)
         for name in ("sgd", "adagrad", "rmsprop", "adam", "adamw", "nadam", "radam", "adamax", "lion")]


@pytest.mark.parametrize("clip", [False, True], ids=["plain", "clipped"])
def test_different_optimizers_in_parallel_match_sequential(clip):
    results = []
    for concurrently in (False, True):
        problems = [problem(seed, rule, dict(config, **({"momentum": 0.9} if rule.name == "sgd" else {})))
                    for seed, (rule, config) in enumerate(CASES * 2)]
        run_all([stepper(opt, grads, clip) for opt, _, grads in problems], concurrently)
        results.append([[p.copy() for p in params] for _, params, _ in problems])
    for sequential, parallel in zip(*results):
        for a, b in zip(sequential, parallel):
            assert np.array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))


@pytest.mark.parametrize(("rule", "config"), CASES, ids=[r.name for r, _ in CASES])
def test_two_threads_on_one_optimizer_serialise(rule, config):
    # Every step uses the same gradient, so any interleaving of whole steps gives
    # the same result as 2N steps one after the other; a torn step would not.
    def build():
        rng = np.random.default_rng(7)
        params = [rng.standard_normal(SIZE).astype(np.float32), rng.standard_normal(777)]
        grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
        return rule.optimizer(params, **config), params, grads

    opt, params, grads = build()
    run_all([stepper(opt, [grads] * STEPS, False)] * 2, concurrently=True)
    reference, reference_params, _ = build()
    for _ in range(2 * STEPS):
        reference.step(grads)
    assert opt.step_count == reference.step_count == 2 * STEPS
    for a, b in zip(params, reference_params):
        assert np.array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))
    state, reference_state = opt.state_dict()["state"], reference.state_dict()["state"]
    for key, entry in reference_state.items():
        for name, value in entry.items():
            other = state[key][name]
            assert np.array_equal(value, other) if isinstance(value, np.ndarray) else value == other


def test_checkpoint_while_another_thread_steps(tmp_path):
    params = [np.zeros(SIZE, np.float32)]
    opt = lrcore.Adam(params, lr=0.01)
    grads = [np.ones(SIZE, np.float32)]
    path = tmp_path / "c.npz"
    stop = threading.Event()

    def steps():
        while not stop.is_set():
            opt.step(grads)

    thread = threading.Thread(target=steps)
    thread.start()
    try:
        for _ in range(5):
            checkpoint.save(path, opt)
            # A consistent snapshot: parameters and state from the same step.
            fresh_params = [np.zeros(SIZE, np.float32)]
            fresh = lrcore.Adam(fresh_params, lr=0.01)
            checkpoint.load(path, fresh)
            replay_params = [np.zeros(SIZE, np.float32)]
            replay = lrcore.Adam(replay_params, lr=0.01)
            for _ in range(fresh.step_count):
                replay.step(grads)
            assert np.array_equal(fresh_params[0], replay_params[0])
    finally:
        stop.set()
        thread.join()


def test_an_optimizer_copy_has_its_own_lock():
    import copy
    import pickle

    w = np.zeros(4, np.float32)
    opt = lrcore.Adam([w], lr=0.1)
    opt.step([np.ones(4, np.float32)])
    for twin in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert twin._step_lock is not opt._step_lock
        assert twin.step([np.ones(4, np.float32)]) is True
        assert twin.step_count == 2 and opt.step_count == 1
