"""Checkpoints: exact round trips, validation that changes nothing, atomic writes, bitwise resume."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import lrcore
from lrcore import checkpoint
from lrcore.schedules import OneCycle, ReduceOnPlateau
from rules import RULE_CASES, RULE_IDS


def make_params(dtype=np.float32):
    rng = np.random.default_rng(1)
    return [rng.standard_normal(7).astype(dtype), rng.standard_normal((3, 4)).astype(np.float64)]


def grads_for(params, step):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


def assert_same_state(a, b):
    assert a["step_count"] == b["step_count"]
    assert a["state"].keys() == b["state"].keys()
    for key in a["state"]:
        for name, value in a["state"][key].items():
            other = b["state"][key][name]
            if isinstance(value, np.ndarray):
                assert other.dtype == value.dtype and np.array_equal(value.reshape(-1).view(np.uint8), other.reshape(-1).view(np.uint8))
            else:
                assert value == other
    for ga, gb in zip(a["param_groups"], b["param_groups"]):
        assert ga == gb


@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_round_trip_restores_everything_and_continues_identically(tmp_path, rule, config):
    params = make_params()
    opt = rule.optimizer(params, **config)
    for step in range(3):
        opt.step(grads_for(params, step))
    path = tmp_path / "ckpt.npz"
    lrcore.checkpoint.save(path, opt)
    saved_params = [p.copy() for p in params]
    expected = opt.state_dict()
    # Continue the original run; then restore a fresh optimizer and continue it the same way.
    for step in range(3, 6):
        opt.step(grads_for(params, step))
    fresh_params = [np.zeros_like(p) for p in params]
    fresh = rule.optimizer(fresh_params, **config)
    checkpoint.load(path, fresh)
    assert_same_state(fresh.state_dict(), expected)
    for a, b in zip(fresh_params, saved_params):
        assert np.array_equal(a, b)
    for step in range(3, 6):
        fresh.step(grads_for(fresh_params, step))
    for a, b in zip(fresh_params, params):
        assert np.array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))
    assert_same_state(fresh.state_dict(), opt.state_dict())


def test_params_false_stores_only_the_optimizer(tmp_path):
    params = make_params()
    opt = lrcore.Adam(params, lr=0.1)
    opt.step(grads_for(params, 0))
    checkpoint.save(tmp_path / "c.npz", opt, params=False)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as archive:
        assert not any(name.startswith("params/") for name in archive.files)
    other = [np.full_like(p, 7) for p in params]
    fresh = lrcore.Adam(other, lr=0.1)
    checkpoint.load(tmp_path / "c.npz", fresh)
    assert all(np.all(p == 7) for p in other)
    assert fresh.step_count == 1


def test_schedules_and_skipped_steps_round_trip(tmp_path):
    params = make_params()
    lr = ReduceOnPlateau(OneCycle(0.1, total_steps=50), factor=0.5, patience=0)
    opt = lrcore.Adam(params, lr=lr, betas=(0.9, 0.99), skip_nonfinite=True)
    for step in range(4):
        opt.step(grads_for(params, step))
        lr.observe(10.0 + step)  # worsening: reductions
    bad = grads_for(params, 9)
    bad[0][0] = np.inf
    assert opt.step(bad) is False
    checkpoint.save(tmp_path / "c.npz", opt)
    lr2 = ReduceOnPlateau(OneCycle(0.1, total_steps=50), factor=0.5, patience=0)
    fresh = lrcore.Adam([np.zeros_like(p) for p in params], lr=lr2, betas=(0.9, 0.99), skip_nonfinite=True)
    checkpoint.load(tmp_path / "c.npz", fresh)
    assert lr2.state_dict() == lr.state_dict() and lr2.scale < 1
    assert fresh.skipped_steps == 1 and fresh.step_count == 4
    assert fresh.param_groups[0]["betas"] == (0.9, 0.99)


# ------------------------------------------------------------ validation --
def saved(tmp_path, opt):
    path = tmp_path / "c.npz"
    checkpoint.save(path, opt)
    return path


def rewrite_metadata(path, change):
    with np.load(path, allow_pickle=False) as archive:
        contents = {name: archive[name] for name in archive.files}
    metadata = json.loads(str(contents["__metadata__"][()]))
    change(metadata)
    contents["__metadata__"] = np.array(json.dumps(metadata))
    np.savez(path, **contents)


def strip_params(path):
    with np.load(path, allow_pickle=False) as archive:
        contents = {n: archive[n] for n in archive.files if not n.startswith("params/")}
    metadata = json.loads(str(contents["__metadata__"][()]))
    metadata["params"] = None
    contents["__metadata__"] = np.array(json.dumps(metadata))
    np.savez(path, **contents)


def truncate(path):
    with open(path, "r+b") as file:
        file.truncate(os.path.getsize(path) // 2)


def overwrite(path):
    with open(path, "wb") as file:
        file.write(b"not a zip file at all")


def drop_entry(path, name):
    with np.load(path, allow_pickle=False) as archive:
        contents = {n: archive[n] for n in archive.files if n != name}
    np.savez(path, **contents)


LOAD_ERRORS = [
    ("wrong_version", lambda p: rewrite_metadata(p, lambda m: m.update(version=99)),
     lambda: lrcore.Adam(make_params(), lr=0.1), "format version 99 is not supported"),
    ("not_a_checkpoint", lambda p: np.savez(p, x=np.zeros(3)),
     lambda: lrcore.Adam(make_params(), lr=0.1), "not an lrcore checkpoint"),
    ("not_json", lambda p: np.savez(p, __metadata__=np.array("{oops")),
     lambda: lrcore.Adam(make_params(), lr=0.1), "not an lrcore checkpoint"),
    ("truncated", truncate,
     lambda: lrcore.Adam(make_params(), lr=0.1), "cannot read checkpoint"),
    ("garbage", overwrite,
     lambda: lrcore.Adam(make_params(), lr=0.1), "cannot read checkpoint"),
    ("pickled_object", lambda p: np.savez(p, __metadata__=np.array([{"a": 1}], dtype=object)),
     lambda: lrcore.Adam(make_params(), lr=0.1), "cannot read checkpoint"),
    ("other_class", lambda p: None, lambda: lrcore.AdamW(make_params(), lr=0.1), "of a Adam optimizer, not AdamW"),
    ("param_count", lambda p: None, lambda: lrcore.Adam(make_params()[:1], lr=0.1),
     "checkpoint has 2 parameters but the optimizer has 1"),
    ("param_shape", lambda p: None,
     lambda: lrcore.Adam([np.zeros(8, np.float32), np.zeros((3, 4))], lr=0.1), r"params\[0\] in the checkpoint"),
    ("param_dtype", lambda p: None, lambda: lrcore.Adam(make_params(np.float64), lr=0.1),
     r"params\[0\] in the checkpoint is float32"),
    ("state_shape", strip_params,
     lambda: lrcore.Adam([np.zeros(8, np.float32), np.zeros((3, 4))], lr=0.1),
     r"state\[0\]\['exp_avg'\] must be a float32 array of shape \(8,\)"),
    ("missing_array", lambda p: drop_entry(p, "state/1/exp_avg"),
     lambda: lrcore.Adam(make_params(), lr=0.1), "missing state/1/exp_avg"),
    ("missing_metadata_key", lambda p: rewrite_metadata(p, lambda m: m.pop("state")),
     lambda: lrcore.Adam(make_params(), lr=0.1), "damaged"),
    ("group_count", lambda p: None,
     lambda: lrcore.Adam([{"params": make_params()[:1]}, {"params": make_params()[1:]}], lr=0.1),
     "parameter groups"),
    ("schedule_where_number", lambda p: None, lambda: lrcore.Adam(make_params(), lr=0.1), None),
]


@pytest.mark.parametrize(("damage", "make_target", "message"), [c[1:] for c in LOAD_ERRORS],
                         ids=[c[0] for c in LOAD_ERRORS])
def test_load_rejects_bad_checkpoints_and_changes_nothing(tmp_path, damage, make_target, message):
    params = make_params()
    source = lrcore.Adam(params, lr=OneCycle(0.1, total_steps=20) if message is None else 0.1)
    source.step(grads_for(params, 0))
    path = saved(tmp_path, source)
    damage(path)
    target = make_target()
    target.step([np.ones_like(p) for g in target.param_groups for p in g["params"]])
    before = target.state_dict()
    before_params = [p.copy() for g in target.param_groups for p in g["params"]]
    with pytest.raises(ValueError, match=message or "schedule where the optimizer has a number"):
        checkpoint.load(path, target)
    assert_same_state(target.state_dict(), before)
    after_params = [p for g in target.param_groups for p in g["params"]]
    assert all(np.array_equal(a, b) for a, b in zip(before_params, after_params))


def test_missing_file_and_wrong_types(tmp_path):
    opt = lrcore.SGD([np.zeros(2, np.float32)], lr=0.1)
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "nope.npz", opt)
    with pytest.raises(TypeError, match="optimizer must be an lrcore Optimizer"):
        checkpoint.save(tmp_path / "x.npz", {"not": "an optimizer"})
    with pytest.raises(TypeError, match="params must be a bool"):
        checkpoint.save(tmp_path / "x.npz", opt, params="yes")


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    params = make_params()
    opt = lrcore.Adam(params, lr=0.1)
    opt.step(grads_for(params, 0))
    path = saved(tmp_path, opt)
    original = path.read_bytes()

    def broken_savez(file, **arrays):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.np, "savez", broken_savez)
    opt.step(grads_for(params, 1))
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, opt)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["c.npz"]  # the temporary file was removed


# --------------------------------------------------- crash while writing --
WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import lrcore
    from lrcore import checkpoint

    path = sys.argv[1]
    w = np.zeros(1 << 20, np.float32)
    opt = lrcore.Adam([w, np.zeros(1 << 19)], lr=0.1)
    g = [np.ones_like(w), np.ones(1 << 19)]
    version = 0
    while True:
        version += 1
        opt.step(g)
        w.fill(version)        # the parameter says which version this is
        checkpoint.save(path, opt)
        print(version, flush=True)
    """
)


def test_a_writer_killed_at_a_random_moment_leaves_a_complete_checkpoint(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path = tmp_path / "ckpt.npz"
    rng = random.Random(1234)
    seen_versions = set()
    for attempt in range(6):
        process = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None
            first = process.stdout.readline()  # at least one complete checkpoint exists
            assert first.strip(), "the writer did not start"
            time.sleep(rng.uniform(0.0, 0.4))
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
            process.stdout.close()
        w = np.zeros(1 << 20, np.float32)
        opt = lrcore.Adam([w, np.zeros(1 << 19)], lr=0.1)
        checkpoint.load(path, opt)  # must always load
        version = opt.step_count
        assert version >= 1
        assert np.all(w == version), "parameters and optimizer state come from different versions"
        assert opt.state_dict()["state"][0]["step"] == version
        seen_versions.add(version)
    # Leftover temporary files from killed writers are harmless and never the checkpoint itself.
    assert all(name == "ckpt.npz" or name.endswith(".tmp") or name == "writer.py" for name in os.listdir(tmp_path))


# --------------------------------------------------------- bitwise resume --
TRAINER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import lrcore
    from lrcore import checkpoint
    from lrcore.schedules import OneCycle, ReduceOnPlateau

    mode, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    total, half = 40, 20
    rng = np.random.default_rng(0)
    target = [rng.standard_normal(1000).astype(np.float32), rng.standard_normal((30, 7))]
    w = [np.zeros(1000, np.float32), np.zeros((30, 7))]
    lr = ReduceOnPlateau(OneCycle(0.05, total_steps=total), factor=0.5, patience=1, threshold=0.5)
    opt = lrcore.Adam(w, lr=lr, weight_decay=1e-3, amsgrad=True)

    def train(first, last):
        for step in range(first, last):
            noise = np.random.default_rng(step)
            grads = [(p - t) * p.dtype.type(2) + noise.standard_normal(p.shape).astype(p.dtype)
                     for p, t in zip(w, target)]
            opt.step(grads)
            if step % 4 == 3:
                lr.observe(float(sum(np.mean((p - t) ** 2) for p, t in zip(w, target))))

    if mode == "full":
        train(0, total)
    elif mode == "first":
        train(0, half)
        checkpoint.save(path, opt)
        sys.exit(0)
    else:
        checkpoint.load(path, opt)
        train(half, total)
    state = opt.state_dict()["state"]
    arrays = {f"w{i}": p for i, p in enumerate(w)}
    arrays.update({f"s{k}_{n}": v for k, e in state.items() for n, v in e.items() if isinstance(v, np.ndarray)})
    np.savez(out, **arrays, lr=np.array(opt.get_last_lr()), scale=np.array(lr.scale))
    """
)


def test_resume_in_a_fresh_process_is_bitwise_identical(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAINER)
    ckpt = str(tmp_path / "ckpt.npz")
    full, resumed = str(tmp_path / "full.npz"), str(tmp_path / "resumed.npz")
    run = lambda *args: subprocess.run([sys.executable, str(script), *args], check=True)  # noqa: E731
    run("full", ckpt, full)
    run("first", ckpt, "unused")
    run("resume", ckpt, resumed)
    with np.load(full) as a, np.load(resumed) as b:
        assert sorted(a.files) == sorted(b.files)
        assert float(a["scale"]) < 1.0, "the plateau schedule should have reduced the learning rate"
        for name in a.files:
            x, y = np.atleast_1d(a[name]), np.atleast_1d(b[name])
            assert np.array_equal(x.reshape(-1).view(np.uint8), y.reshape(-1).view(np.uint8)), name
