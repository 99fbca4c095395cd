"""Hostile loading: damaged, lying and malicious checkpoints and state dicts.

The contract under attack: loading (``lrcore.load`` and
``Optimizer.load_state_dict``) checks everything before it applies anything.
Whatever is wrong with the input, the optimizer (its state_dict, counters,
last learning rates, hyperparameter objects, schedule state) and the parameter
arrays stay bitwise as they were; ``lrcore.load`` raises only
``lrcore.CheckpointError`` and ``load_state_dict`` a ``ValueError``. Archive
entries that cannot belong to the checkpoint are refused without being
decompressed, so memory stays bounded by the checkpoint's legitimate size.
"""

from __future__ import annotations

import copy
import io
import json
import os
import random
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import lrcore
from lrcore import CheckpointError
from lrcore.schedules import OneCycle, ReduceOnPlateau

MAX_COUNT = 2**63 - 1  # the largest int64: a counter may reach it (then the next step refuses) and load back


# ----------------------------------------------------------------- helpers --
def make_params(seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(7).astype(np.float32), rng.standard_normal((3, 4))]


def ones_like_all(params):
    return [np.ones_like(p) for p in params]


def build(params, *, groups=False, schedule=False, skip_nonfinite=False):
    """An Adam over ``params``; optionally two groups and/or a stateful lr schedule."""
    lr = ReduceOnPlateau(OneCycle(0.1, total_steps=50), factor=0.5, patience=0) if schedule else 0.1
    spec = [{"params": [params[0]]}, {"params": [params[1]], "lr": 0.05 if not schedule else lr}] if groups else params
    return lrcore.Adam(spec, lr=lr, betas=(0.9, 0.99), skip_nonfinite=skip_nonfinite)


def trained_source(steps=3, **kwargs):
    """A source optimizer with some history: state, counters and (optionally) a reduced schedule."""
    params = make_params(seed=2)
    opt = build(params, **kwargs)
    for k in range(steps):
        opt.step([np.full_like(p, 0.5 + k) for p in params])
        schedule = opt.param_groups[0]["lr"]
        if isinstance(schedule, ReduceOnPlateau):
            schedule.observe(10.0 + k)  # worsening: the schedule reduces its scale
    return opt, params


def trained_target(**kwargs):
    """The optimizer a checkpoint is loaded into: a different history from the source."""
    params = make_params(seed=1)
    opt = build(params, **kwargs)
    opt.step(ones_like_all(params))
    return opt, params


def canonical(value):
    """A comparable form of nested state: arrays become (dtype, shape, raw bytes)."""
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, dict):
        return {"dict": sorted((repr(k), canonical(v)) for k, v in value.items())}
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [canonical(v) for v in value])
    if isinstance(value, float):
        return ("float", value.hex())
    return (type(value).__name__, repr(value))


def fingerprint(opt, params):
    """Everything a failed load must leave as it was."""
    groups = []
    for group in opt.param_groups:
        entries = []
        for name, value in sorted(group.items()):
            if name in ("params", "param_names"):
                continue
            state = value.state_dict() if hasattr(value, "state_dict") else None
            entries.append((name, id(value), type(value).__name__, canonical(state) if state is not None
                            else canonical(value)))
        groups.append(entries)
    return {
        "state_dict": canonical(opt.state_dict()),
        "step_count": opt.step_count,
        "skipped_steps": opt.skipped_steps,
        "last_lr": [float(x).hex() for x in opt.get_last_lr()],
        "last_hyperparameters": canonical(opt.last_hyperparameters),
        "groups": groups,
        "param_ids": [[id(p) for p in g["params"]] for g in opt.param_groups],
        "params": [canonical(p) for p in params],
    }


def assert_unchanged(opt, params, before):
    after = fingerprint(opt, params)
    for key in before:
        assert after[key] == before[key], f"{key} changed by a failed load"


def npz_entries(path):
    """name -> raw bytes of each archive entry."""
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def write_zip(path, entries, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def npy_bytes(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def read_metadata(path):
    with np.load(path, allow_pickle=False) as archive:
        return json.loads(str(archive["__metadata__"][()]))


def replace_metadata_text(path, text):
    """Rewrites the archive with ``text`` as the metadata, every other entry kept byte for byte."""
    entries = npz_entries(path)
    entries["__metadata__.npy"] = npy_bytes(np.array(text))
    write_zip(path, entries)


def edit_metadata(path, change):
    metadata = read_metadata(path)
    change(metadata)
    replace_metadata_text(path, json.dumps(metadata, allow_nan=True))


def expect_refused(path, make_target=trained_target, match=None, **kwargs):
    """Loads ``path`` into a fresh target: must raise CheckpointError (exactly) and change nothing."""
    target, params = make_target(**kwargs)
    before = fingerprint(target, params)
    with pytest.raises(Exception) as caught:
        lrcore.load(path, target)
    assert type(caught.value) is CheckpointError, f"{type(caught.value).__name__}: {caught.value}"
    if match is not None:
        assert match in str(caught.value)
    assert_unchanged(target, params, before)
    return caught.value


@pytest.fixture
def checkpoint_path(tmp_path):
    source, _ = trained_source(schedule=True)
    path = tmp_path / "ckpt.npz"
    lrcore.save(path, source)
    return path


def nested_list_json(depth, leaf="0.1"):
    return "[" * depth + leaf + "]" * depth


# ------------------------------------- class 1: invalid metadata via load --
def group0(change):
    return lambda m: change(m["param_groups"][0])


def state0(change):
    return lambda m: change(m["state"]["0"])


def set_key(key, value):
    return lambda d: d.__setitem__(key, value)


def rename_state_key(new):
    def change(m):
        m["state"][new] = m["state"].pop("1")
    return change


METADATA_EDITS = []
for _field in ("skipped_steps", "step_count"):
    for _label, _value in [("abc", "abc"), ("null", None), ("neg", -1), ("frac", 1.5), ("2pow63", 2**63),
                           ("true", True)]:
        METADATA_EDITS.append((f"{_field}={_label}", set_key(_field, _value)))
for _label, _value in [("neg", -1), ("frac", 0.5), ("2pow63", 2**63), ("x", "x"),
                       ("null", None), ("true", True), ("list", [1])]:
    METADATA_EDITS.append((f"state_step={_label}", state0(set_key("step", _value))))
for _label, _value in [("neg", -1), ("abc", "abc"), ("nan", float("nan")), ("inf", float("inf")),
                       ("null", None), ("list", [0.1]), ("bool", True), ("huge_int", 10**400)]:
    METADATA_EDITS.append((f"lr={_label}", group0(set_key("lr", _value))))
METADATA_EDITS += [
    ("betas=[2,0]", group0(set_key("betas", [2, 0]))),
    ("betas=tuple(2,0)", group0(set_key("betas", {"__tuple__": [2, 0]}))),
    ("betas=len3", group0(set_key("betas", [0.9, 0.99, 0.5]))),
    ("betas=tuple_len3", group0(set_key("betas", {"__tuple__": [0.9, 0.99, 0.5]}))),
    ("betas=nan", group0(set_key("betas", [float("nan"), 0.99]))),
    ("betas=str", group0(set_key("betas", "ab"))),
    ("amsgrad=yes", group0(set_key("amsgrad", "yes"))),
    ("amsgrad=1", group0(set_key("amsgrad", 1))),
    ("eps=-inf", group0(set_key("eps", float("-inf")))),
    ("unknown_hyperparameter", group0(set_key("momentum", 0.9))),
    ("params=[]", set_key("params", [])),
    ("params=one_entry", lambda m: m.__setitem__("params", m["params"][:1])),
    ("params=lying_shape", lambda m: m["params"][0].__setitem__("shape", [99])),
    ("params=lying_dtype", lambda m: m["params"][1].__setitem__("dtype", "<f4")),
    ("params=not_list", set_key("params", {"shape": [7]})),
    ("num_params=str", set_key("num_params", "2")),
    ("num_params=float", set_key("num_params", 2.0)),
    ("num_params=null", set_key("num_params", None)),
    ("num_params=3", set_key("num_params", 3)),
    ("param_groups=dict", set_key("param_groups", {"0": {}})),
    ("param_groups=int", set_key("param_groups", 5)),
    ("param_groups=[]", set_key("param_groups", [])),
    ("param_groups=[5]", set_key("param_groups", [5])),
    ("param_groups=[str]", set_key("param_groups", ["lr"])),
    ("group_params_missing", group0(lambda g: g.pop("params"))),
    ("group_params_dict", group0(set_key("params", {"a": 0, "b": 1}))),
    ("group_params_str", group0(set_key("params", "ab"))),
    ("group_params_out_of_range", group0(set_key("params", [5, 6]))),
    ("state=list", set_key("state", [])),
    ("state=str", set_key("state", "x")),
    ("state_key=-1", rename_state_key("-1")),
    ("state_key=abc", rename_state_key("abc")),
    ("state_key=99", rename_state_key("99")),
    ("state_key=superscript_two", rename_state_key("\u00b2")),
    ("state_entry=list", state0(lambda e: e.clear())),
    ("state_arrays_unknown_name", state0(lambda e: e["arrays"].append("bogus"))),
    ("state_none_unknown_name", state0(lambda e: e["none"].append("bogus"))),
    ("state_arrays_not_list", state0(set_key("arrays", "exp_avg"))),
    ("optimizer=SGD", set_key("optimizer", "SGD")),
    ("optimizer=AdamW", set_key("optimizer", "AdamW")),
    ("optimizer=int", set_key("optimizer", 5)),
    ("version=2", set_key("version", 2)),
    ("format=other", set_key("format", "other")),
]


# Every case runs twice: with plain-number hyperparameters, and with a stateful lr schedule
# (whose state a failed load must not touch either).
SCHEDULE = pytest.mark.parametrize("schedule", [False, True], ids=["number_lr", "schedule_lr"])


@SCHEDULE
@pytest.mark.parametrize("change", [c[1] for c in METADATA_EDITS], ids=[c[0] for c in METADATA_EDITS])
def test_load_refuses_invalid_metadata_and_changes_nothing(tmp_path, change, schedule):
    source, _ = trained_source(schedule=schedule)
    path = tmp_path / "ckpt.npz"
    lrcore.save(path, source)
    edit_metadata(path, change)
    expect_refused(path, schedule=schedule)


def test_unedited_checkpoint_loads_into_the_same_target(checkpoint_path):
    # The baseline the refusals above are measured against: the file itself is fine.
    source, source_params = trained_source(schedule=True)
    target, params = trained_target(schedule=True)
    edit_metadata(checkpoint_path, lambda m: None)
    lrcore.load(checkpoint_path, target)
    expected = fingerprint(source, source_params)
    got = fingerprint(target, params)
    for key in ("state_dict", "step_count", "skipped_steps", "params"):
        assert got[key] == expected[key], key


def test_get_last_lr_after_load_is_the_saved_optimizers_last_lr(checkpoint_path):
    # Documented: right after loading, get_last_lr() is the lr of the saved optimizer's last step.
    # The source's plateau schedule reduced its scale after that step (observe), which must not
    # rewrite history.
    source, _ = trained_source(schedule=True)
    target, _ = trained_target(schedule=True)
    lrcore.load(checkpoint_path, target)
    assert target.get_last_lr() == source.get_last_lr()


def test_metadata_second_group_invalid_leaves_first_group_alone(tmp_path):
    source, _ = trained_source(groups=True)
    path = tmp_path / "c.npz"
    lrcore.save(path, source)

    def change(m):
        m["param_groups"][0]["lr"] = 0.5
        m["param_groups"][1]["lr"] = -1.0

    edit_metadata(path, change)
    expect_refused(path, groups=True)


# ------------------------------- class 2: invalid values via load_state_dict --
def sd_group(g, key, value):
    return lambda sd: sd["param_groups"][g].__setitem__(key, value)


def sd_state(key, value):
    return lambda sd: sd["state"][0].__setitem__(key, value)


def sd_top(key, value):
    return lambda sd: sd.__setitem__(key, value)


STATE_DICT_EDITS = []
for _field in ("skipped_steps", "step_count"):
    for _label, _value in [("abc", "abc"), ("x", "x"), ("null", None), ("neg", -1), ("frac", 1.5),
                           ("2pow63", 2**63), ("true", True), ("nan", float("nan"))]:
        STATE_DICT_EDITS.append((f"{_field}={_label}", sd_top(_field, _value)))
for _label, _value in [("neg", -1), ("frac", 1.5), ("2pow63", 2**63), ("x", "x"),
                       ("null", None), ("true", True), ("np_neg", np.int64(-3))]:
    STATE_DICT_EDITS.append((f"state_step={_label}", sd_state("step", _value)))
for _label, _value in [("neg", -1), ("abc", "abc"), ("nan", float("nan")), ("inf", float("inf")), ("null", None)]:
    STATE_DICT_EDITS.append((f"lr={_label}", sd_group(0, "lr", _value)))
STATE_DICT_EDITS += [
    ("betas=(2,0)", sd_group(0, "betas", (2, 0))),
    ("betas=[2,0]", sd_group(0, "betas", [2, 0])),
    ("betas=len3", sd_group(0, "betas", (0.9, 0.99, 0.5))),
    ("amsgrad=yes", sd_group(0, "amsgrad", "yes")),
    ("unknown_hyperparameter", sd_group(0, "momentum", 0.9)),
    ("second_group_invalid", lambda sd: (sd["param_groups"][0].__setitem__("lr", 0.5),
                                         sd["param_groups"][1].__setitem__("lr", -1.0))),
    ("second_group_betas_invalid", lambda sd: (sd["param_groups"][0].__setitem__("eps", 1e-3),
                                               sd["param_groups"][1].__setitem__("betas", (0.9, 1.5)))),
    ("state=list", sd_top("state", [])),
    ("state=None", sd_top("state", None)),
    ("param_groups=int", sd_top("param_groups", 5)),
    ("param_groups=[]", sd_top("param_groups", [])),
    ("param_groups=non_dicts", sd_top("param_groups", [5, 6])),
    ("group_params_missing", lambda sd: sd["param_groups"][0].pop("params")),
    ("group_params_count", sd_group(0, "params", [0, 1])),
    ("state_entry=list", lambda sd: sd["state"].__setitem__(0, [1])),
    ("state_unknown_name", sd_state("bogus", np.zeros(7, np.float32))),
    ("state_array_wrong_shape", sd_state("exp_avg", np.zeros(8, np.float32))),
    ("state_array_wrong_dtype", sd_state("exp_avg", np.zeros(7, np.float64))),
    ("state_array_list", sd_state("exp_avg", [0.0] * 7)),
    ("state_dict=list", None),
]


@SCHEDULE
@pytest.mark.parametrize("change", [c[1] for c in STATE_DICT_EDITS], ids=[c[0] for c in STATE_DICT_EDITS])
def test_load_state_dict_refuses_invalid_values_and_changes_nothing(change, schedule):
    source, _ = trained_source(groups=True, schedule=schedule)
    state_dict = source.state_dict()
    if change is None:
        state_dict = [state_dict]
    else:
        change(state_dict)
    target, params = trained_target(groups=True, schedule=schedule)
    before = fingerprint(target, params)
    with pytest.raises(Exception) as caught:
        target.load_state_dict(state_dict)
    assert isinstance(caught.value, ValueError), f"{type(caught.value).__name__}: {caught.value}"
    assert_unchanged(target, params, before)


def test_load_state_dict_accepts_the_unedited_state_dict():
    source, source_params = trained_source(groups=True, schedule=True)
    target, params = trained_target(groups=True, schedule=True)
    target.load_state_dict(source.state_dict(), params=[p.copy() for p in source_params])
    assert fingerprint(target, params)["state_dict"] == fingerprint(source, source_params)["state_dict"]
    assert fingerprint(target, params)["params"] == fingerprint(source, source_params)["params"]


def _readonly_second_target(schedule):
    params = make_params(seed=1)
    target = build(params, schedule=schedule)
    target.step(ones_like_all(params))
    params[1].setflags(write=False)
    return target, params, [p.copy() + 1 for p in params]


def _bad_values(kind):
    def make(schedule):
        params = make_params(seed=1)
        target = build(params, schedule=schedule)
        target.step(ones_like_all(params))
        values = [p.copy() + 1 for p in params]
        if kind == "dtype":
            values[1] = values[1].astype(np.float32)
        elif kind == "shape":
            values[1] = values[1].reshape(4, 3).copy()
        elif kind == "count":
            values = values[:1]
        elif kind == "count_more":
            values = values + [values[0].copy()]
        elif kind == "not_array":
            values[1] = values[1].tolist()
        return target, params, values
    return make


PARAM_TARGETS = {
    "readonly_second": _readonly_second_target,
    "wrong_dtype": _bad_values("dtype"),
    "wrong_shape": _bad_values("shape"),
    "wrong_count_fewer": _bad_values("count"),
    "wrong_count_more": _bad_values("count_more"),
    "not_an_array": _bad_values("not_array"),
}


@SCHEDULE
@pytest.mark.parametrize("make", list(PARAM_TARGETS.values()), ids=list(PARAM_TARGETS))
def test_load_state_dict_with_unusable_params_changes_nothing(make, schedule):
    source, _ = trained_source(schedule=schedule)
    target, params, values = make(schedule)
    before = fingerprint(target, params)
    with pytest.raises(ValueError):
        target.load_state_dict(source.state_dict(), params=values)
    assert_unchanged(target, params, before)


# ------------------------------------------- class 3: structural damage --
def _load_outcome(path, source_print):
    """Loads damaged ``path``: either CheckpointError with nothing changed, or exactly the saved state."""
    target, params = trained_target(schedule=True)
    before = fingerprint(target, params)
    try:
        lrcore.load(path, target)
    except CheckpointError as error:
        assert type(error) is CheckpointError
        assert_unchanged(target, params, before)
        return "refused"
    after = fingerprint(target, params)
    for key in ("state_dict", "step_count", "skipped_steps", "params"):
        assert after[key] == source_print[key], f"a damaged file loaded with a different {key}"
    return "loaded"


@pytest.fixture
def source_and_bytes(tmp_path):
    source, source_params = trained_source(schedule=True)
    path = tmp_path / "ckpt.npz"
    lrcore.save(path, source)
    return fingerprint(source, source_params), path.read_bytes(), tmp_path / "damaged.npz"


TRUNCATIONS = 40
FLIPS = 200
RANDOM_FILES = 20


def test_truncated_files_are_refused(source_and_bytes):
    source_print, data, path = source_and_bytes
    offsets = sorted({int(k * len(data) / TRUNCATIONS) for k in range(TRUNCATIONS)})
    for offset in offsets:
        path.write_bytes(data[:offset])
        assert _load_outcome(path, source_print) == "refused", offset


def test_single_byte_flips_are_refused_or_load_exactly(source_and_bytes):
    source_print, data, path = source_and_bytes
    rng = random.Random(20240601)
    positions = rng.sample(range(len(data)), min(FLIPS, len(data)))
    outcomes = {"refused": 0, "loaded": 0}
    for position in positions:
        damaged = bytearray(data)
        damaged[position] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(damaged))
        outcomes[_load_outcome(path, source_print)] += 1
    assert outcomes["refused"] > FLIPS // 2  # nearly every flip is detected (CRC, headers, JSON)


def test_random_bytes_are_refused(source_and_bytes):
    source_print, data, path = source_and_bytes
    rng = random.Random(7)
    for k in range(RANDOM_FILES):
        size = rng.choice([1, 4, 22, 100, len(data) // 2, len(data)])
        noise = bytes(rng.getrandbits(8) for _ in range(size))
        if k % 2:
            noise = b"PK\x03\x04" + noise  # starts like a zip
        path.write_bytes(noise)
        assert _load_outcome(path, source_print) == "refused", k


def test_random_tail_over_a_valid_prefix_is_refused(source_and_bytes):
    # The end of central directory is what zipfile reads first: damage it specifically.
    source_print, data, path = source_and_bytes
    rng = random.Random(11)
    for k in range(1, 30):
        cut = len(data) - k * 4
        path.write_bytes(data[:cut] + bytes(rng.getrandbits(8) for _ in range(len(data) - cut)))
        assert _load_outcome(path, source_print) == "refused", k


def test_zero_length_file_is_refused(source_and_bytes):
    source_print, _, path = source_and_bytes
    path.write_bytes(b"")
    assert _load_outcome(path, source_print) == "refused"


def test_a_directory_is_an_os_error_and_changes_nothing(tmp_path):
    # Not a damaged checkpoint but a path that cannot be read as a file: lrcore.load
    # documents that such OSErrors propagate as they are.
    directory = tmp_path / "ckpt.npz"
    directory.mkdir()
    target, params = trained_target()
    before = fingerprint(target, params)
    with pytest.raises(IsADirectoryError):
        lrcore.load(directory, target)
    assert fingerprint(target, params) == before


def test_missing_file_is_file_not_found(tmp_path):
    target, params = trained_target()
    before = fingerprint(target, params)
    with pytest.raises(FileNotFoundError):
        lrcore.load(tmp_path / "absent.npz", target)
    assert_unchanged(target, params, before)


# ----------------------------------------- class 4: zip bombs and size lies --
BOMB_BYTES = 64 * 1024 * 1024  # what the hostile entry inflates to
CHUNK = 1 << 20


def add_zero_bomb(path, name, total=BOMB_BYTES, first=True, prefix=b""):
    """Rewrites ``path`` with an extra deflated entry ``name`` of ``prefix`` + zeros (``total`` bytes)."""
    entries = npz_entries(path)
    with zipfile.ZipFile(path, "w") as archive:
        if not first:
            for entry, data in entries.items():
                archive.writestr(entry, data)
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            member.write(prefix)
            zeros = bytes(CHUNK)
            written = len(prefix)
            while written < total:
                piece = zeros[: min(CHUNK, total - written)]
                member.write(piece)
                written += len(piece)
        if first:
            for entry, data in entries.items():
                archive.writestr(entry, data)


def measured_refusal(path, make_target=trained_target, **kwargs):
    """Refuses ``path`` (CheckpointError, nothing changed); returns (seconds, peak traced bytes)."""
    target, params = make_target(**kwargs)
    before = fingerprint(target, params)
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(Exception) as caught:
            lrcore.load(path, target)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert type(caught.value) is CheckpointError, f"{type(caught.value).__name__}: {caught.value}"
    assert_unchanged(target, params, before)
    return elapsed, peak


@pytest.fixture(scope="module")
def bomb_template(tmp_path_factory):
    """A valid checkpoint of ~100 KiB legitimate size (bigger parameters than the other tests)."""
    directory = tmp_path_factory.mktemp("bombs")
    params = [np.ones(12_800, np.float32), np.ones((40, 40))]
    opt = lrcore.Adam(params, lr=0.1)
    opt.step(ones_like_all(params))
    path = directory / "template.npz"
    lrcore.save(path, opt)
    return path.read_bytes()


def bomb_target():
    params = [np.zeros(12_800, np.float32), np.zeros((40, 40))]
    opt = lrcore.Adam(params, lr=0.1)
    opt.step(ones_like_all(params))
    return opt, params


BOMB_NAMES = ["evil.npy", "evil", "state/0/unknown_name.npy", "state/0/exp_avg_sq_max.npy", "params/99.npy",
              "state/5/exp_avg.npy", "params/0.npy", "state/1/exp_avg.npy", "__metadata__.npy"]


@pytest.mark.parametrize("name", BOMB_NAMES)
def test_compressible_hostile_entry_is_refused_quickly_without_inflating(tmp_path, bomb_template, name):
    path = tmp_path / "bomb.npz"
    path.write_bytes(bomb_template)
    if name in ("params/0.npy", "state/1/exp_avg.npy", "__metadata__.npy"):
        # A legitimate name, replaced by a 64 MiB entry (declared size far above what it may hold).
        entries = npz_entries(path)
        del entries[name]
        write_zip(path, entries)
    add_zero_bomb(path, name)
    assert os.path.getsize(path) < 2 * 1024 * 1024  # the bomb really is small on disk
    elapsed, peak = measured_refusal(path, make_target=bomb_target)
    assert elapsed < 2.0
    assert peak < 32 * 1024 * 1024, f"loading took {peak / 2**20:.1f} MiB"


def test_memory_measurement_sees_a_real_load(tmp_path):
    # Calibration for the bound above: a legitimate 16 MiB load must show up in the measurement.
    params = [np.ones(1 << 22, np.float32)]
    opt = lrcore.SGD(params, lr=0.1)
    path = tmp_path / "big.npz"
    lrcore.save(path, opt)
    target = lrcore.SGD([np.zeros(1 << 22, np.float32)], lr=0.1)
    tracemalloc.start()
    try:
        lrcore.load(path, target)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak >= 16 * 1024 * 1024


def test_npy_header_claiming_a_huge_shape_is_refused(tmp_path, bomb_template):
    path = tmp_path / "lie.npz"
    path.write_bytes(bomb_template)
    entries = npz_entries(path)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    entries["params/0.npy"] = header.getvalue() + bytes(64)
    write_zip(path, entries)
    elapsed, peak = measured_refusal(path, make_target=bomb_target)
    assert peak < 32 * 1024 * 1024


@pytest.mark.parametrize("shape", [(2**32, 2**32), (2**62, 4), (-1,), (2**63 + 5,), (3200, 4)])
def test_npy_header_with_overflowing_or_wrong_shape_is_refused(tmp_path, bomb_template, shape):
    path = tmp_path / "lie.npz"
    path.write_bytes(bomb_template)
    entries = npz_entries(path)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    entries["params/0.npy"] = header.getvalue() + bytes(12_800 * 4)
    write_zip(path, entries)
    measured_refusal(path, make_target=bomb_target)


def test_legit_entry_larger_than_its_parameter_is_refused(tmp_path, bomb_template):
    path = tmp_path / "big.npz"
    path.write_bytes(bomb_template)
    entries = npz_entries(path)
    entries["state/0/exp_avg.npy"] = npy_bytes(np.zeros(2_000_000, np.float32))  # 8 MB for a 51 KB state
    write_zip(path, entries, compression=zipfile.ZIP_DEFLATED)
    assert os.path.getsize(path) < 1024 * 1024
    error = expect_refused(path, make_target=bomb_target)
    assert "declares" in str(error)


def test_metadata_declaring_more_than_64_mib_is_refused(tmp_path, bomb_template):
    path = tmp_path / "meta.npz"
    path.write_bytes(bomb_template)
    entries = npz_entries(path)
    del entries["__metadata__.npy"]
    write_zip(path, entries)
    chars = (64 * 1024 * 1024) // 4 + 1024  # a <U string entry just above the limit
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": f"<U{chars}", "fortran_order": False, "shape": ()})
    add_zero_bomb(path, "__metadata__.npy", total=len(header.getvalue()) + chars * 4, prefix=header.getvalue())
    elapsed, peak = measured_refusal(path, make_target=bomb_target)
    assert elapsed < 2.0
    assert peak < 32 * 1024 * 1024


@pytest.mark.parametrize("depth", [100_000, 5_000, 900, 500])
@pytest.mark.parametrize("place", ["top_level", "lr", "state_step", "extra_key"])
def test_deeply_nested_metadata_is_refused_not_recursion_error(checkpoint_path, place, depth):
    # Spliced in as text: the json module could not even write such nesting.
    metadata = read_metadata(checkpoint_path)
    marker = "__DEEP__"
    if place == "top_level":
        text = nested_list_json(depth)
    else:
        if place == "lr":
            metadata["param_groups"][0]["lr"] = marker
        elif place == "state_step":
            metadata["state"]["0"]["step"] = marker
        else:
            metadata["param_groups"][0]["extra"] = marker
        text = json.dumps(metadata).replace(json.dumps(marker), nested_list_json(depth))
    replace_metadata_text(checkpoint_path, text)
    expect_refused(checkpoint_path, schedule=True)


class _Marker:
    """Unpickling this creates the file ``path`` (open(path, "w")): proof that pickle ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("entry", ["__metadata__.npy", "params/0.npy", "state/0/exp_avg.npy"])
def test_pickled_entries_are_refused_without_unpickling(tmp_path, checkpoint_path, entry):
    marker = tmp_path / "unpickled.marker"
    entries = npz_entries(checkpoint_path)
    payload = np.empty(1, dtype=object)
    payload[0] = _Marker(marker)
    entries[entry] = npy_bytes(payload, allow_pickle=True)
    write_zip(checkpoint_path, entries)
    expect_refused(checkpoint_path, schedule=True)
    assert not marker.exists(), "the loader unpickled an entry"


def test_marker_payload_really_writes_when_unpickled(tmp_path):
    # Calibration: the payload above is live, so the absence of the marker means something.
    marker = tmp_path / "unpickled.marker"
    payload = np.empty(1, dtype=object)
    payload[0] = _Marker(marker)
    loaded = np.load(io.BytesIO(npy_bytes(payload, allow_pickle=True)), allow_pickle=True)
    loaded[0].close()
    assert marker.exists()


def test_structured_dtype_with_objects_is_refused(tmp_path, checkpoint_path):
    entries = npz_entries(checkpoint_path)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": [("a", "<f4"), ("b", "|O")], "fortran_order": False, "shape": (7,)})
    entries["params/0.npy"] = header.getvalue() + bytes(7 * 12)
    write_zip(checkpoint_path, entries)
    expect_refused(checkpoint_path, schedule=True)


# --------------------------------------------------------- class 5: limits --
def _near_limit_optimizer(step, step_count=None, skipped=None, skip_nonfinite=False):
    params = [np.zeros(3, np.float32)]
    opt = lrcore.Adam(params, lr=0.1, skip_nonfinite=skip_nonfinite)
    opt.step([np.ones(3, np.float32)])
    state_dict = opt.state_dict()
    state_dict["state"][0]["step"] = step
    if step_count is not None:
        state_dict["step_count"] = step_count
    if skipped is not None:
        state_dict["skipped_steps"] = skipped
    opt.load_state_dict(state_dict)
    return opt, params


def test_per_tensor_step_at_the_limit_steps_once_then_refuses_cleanly():
    opt, params = _near_limit_optimizer(MAX_COUNT - 1)
    assert opt.state_dict()["state"][0]["step"] == MAX_COUNT - 1
    assert opt.step([np.ones(3, np.float32)]) is True
    assert opt.state_dict()["state"][0]["step"] == MAX_COUNT
    assert np.all(np.isfinite(params[0]))
    before = fingerprint(opt, params)
    with pytest.raises(ValueError):
        opt.step([np.ones(3, np.float32)])
    assert_unchanged(opt, params, before)


def test_step_count_at_the_limit_refuses_instead_of_wrapping():
    opt, params = _near_limit_optimizer(5, step_count=MAX_COUNT - 1)
    opt.step([np.ones(3, np.float32)])
    assert opt.step_count == MAX_COUNT
    before = fingerprint(opt, params)
    with pytest.raises(ValueError):
        opt.step([np.ones(3, np.float32)])
    assert opt.step_count == MAX_COUNT
    assert_unchanged(opt, params, before)


def test_skipped_steps_at_the_limit_refuses_instead_of_wrapping():
    opt, params = _near_limit_optimizer(5, skipped=MAX_COUNT - 1, skip_nonfinite=True)
    bad = [np.full(3, np.inf, np.float32)]
    assert opt.step(bad) is False
    assert opt.skipped_steps == MAX_COUNT
    before = fingerprint(opt, params)
    with pytest.raises(ValueError):
        opt.step(bad)
    assert opt.skipped_steps == MAX_COUNT
    assert_unchanged(opt, params, before)


def test_checkpoint_with_step_at_the_limit_loads_then_steps_once(tmp_path):
    source, _ = _near_limit_optimizer(MAX_COUNT - 1, step_count=MAX_COUNT - 1)
    path = tmp_path / "limit.npz"
    lrcore.save(path, source)
    params = [np.zeros(3, np.float32)]
    target = lrcore.Adam(params, lr=0.1)
    lrcore.load(path, target)
    assert target.step_count == MAX_COUNT - 1
    assert target.state_dict()["state"][0]["step"] == MAX_COUNT - 1
    target.step([np.ones(3, np.float32)])
    before = fingerprint(target, params)
    with pytest.raises(ValueError):
        target.step([np.ones(3, np.float32)])
    assert_unchanged(target, params, before)


def test_a_state_reached_by_stepping_can_be_saved_and_loaded(tmp_path):
    # Stepping from the largest loadable counters reaches 2**63 - 1; that state must round-trip
    # (or the step that reaches it must have been refused).
    source, _ = _near_limit_optimizer(MAX_COUNT - 1, step_count=MAX_COUNT - 1)
    source.step([np.ones(3, np.float32)])
    path = tmp_path / "reached.npz"
    lrcore.save(path, source)
    target = lrcore.Adam([np.zeros(3, np.float32)], lr=0.1)
    lrcore.load(path, target)
    assert target.step_count == source.step_count
    other = lrcore.Adam([np.zeros(3, np.float32)], lr=0.1)
    other.load_state_dict(source.state_dict())
    assert other.step_count == source.step_count


def test_a_refused_load_state_dict_leaves_the_schedule_state_alone():
    # Focused form of the schedule_lr cases: the check of a state_dict that is then refused
    # (here for an invalid beta1) must not evaluate the schedule in a way that changes its state.
    params = [np.zeros(3, np.float32)]
    lr = ReduceOnPlateau(OneCycle(0.1, total_steps=50), factor=0.5, patience=0)
    opt = lrcore.Adam(params, lr=lr)
    opt.step([np.ones(3, np.float32)])
    state_dict = opt.state_dict()
    state_dict["step_count"] = 3
    state_dict["param_groups"][0]["betas"] = (2.0, 0.999)
    before = copy.deepcopy(lr.state_dict())
    with pytest.raises(ValueError, match="beta1"):
        opt.load_state_dict(state_dict)
    assert lr.state_dict() == before
