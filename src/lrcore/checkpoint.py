"""Crash-safe optimizer checkpoints: one ``.npz`` file, written atomically, loaded with validation.

A checkpoint holds everything :meth:`Optimizer.state_dict` returns (per-parameter
state arrays and step counts, every group's numeric hyperparameters and the
state of every schedule, the optimizer's step count), the optimizer's
``skipped_steps``, and by default the parameters themselves, so that
``load`` alone resumes a run bitwise-exactly.

File format: a numpy ``.npz`` archive (no pickle anywhere: it is loaded with
``allow_pickle=False``). The entry ``__metadata__`` is a JSON string with
``{"format": "lrcore.checkpoint", "version": 1, "optimizer": class name,
"step_count", "skipped_steps", "param_groups", "state", "params"}``; arrays are
stored under ``state/<index>/<name>`` and ``params/<index>`` (indices in the
order of the optimizer's parameters, groups flattened).

Writing is atomic: the archive goes to a temporary file in the target's
directory, is flushed and fsync'ed, renamed over the target with
:func:`os.replace`, and the directory is fsync'ed. A crash at any moment leaves
either the previous checkpoint or the new one, never a partial file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from typing import Any, Dict, List, Union

import numpy as np

from ._dtypes import bfloat16
from .optim import Optimizer
from .optim._optimizer import MASTER_WEIGHT

__all__ = ["FORMAT_VERSION", "CheckpointError", "load", "save"]

FORMAT_NAME = "lrcore.checkpoint"
#: Version of the file layout; :func:`load` refuses any other.
FORMAT_VERSION = 1
_METADATA_KEY = "__metadata__"

PathLike = Union[str, "os.PathLike[str]"]


# --------------------------------------------------------------- encoding --
def _encode(value: Any, where: str) -> Any:
    """A JSON-safe form of a hyperparameter or schedule state; tuples are tagged to round-trip."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{where}: cannot checkpoint a dict with non-string keys")
        if "__tuple__" in value:
            raise TypeError(f"{where}: the key '__tuple__' is reserved")
        return {k: _encode(v, f"{where}.{k}") for k, v in value.items()}
    raise TypeError(f"{where}: cannot checkpoint a value of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v) for v in value["__tuple__"])
        return {k: _decode(v) for k, v in value.items()}
    return value


def _flat_params(optimizer: Optimizer) -> List[np.ndarray]:
    return [p for group in optimizer.param_groups for p in group["params"]]


# ------------------------------------------------------------------ write --
def save(path: PathLike, optimizer: Optimizer, *, params: bool = True) -> None:
    """Writes ``optimizer``'s full state (and its parameters) to ``path``, atomically.

    Args:
        path: the file to write (conventionally ``*.npz``); replaced if it exists.
        optimizer: an lrcore optimizer.
        params: also store the parameter arrays (default), so :func:`load`
            restores the whole training state. With ``params=False`` only the
            optimizer's state is stored and the caller saves the model.

    Raises:
        TypeError: ``optimizer`` is not an lrcore optimizer, or a schedule's
            state holds a value that cannot be stored without pickle.
        OSError: the file cannot be written; the previous file at ``path``,
            if any, is left intact.

    Examples:
        >>> import numpy as np, lrcore, tempfile, os
        >>> w = np.zeros(3, np.float32)
        >>> opt = lrcore.Adam([w], lr=0.1)
        >>> _ = opt.step([np.ones(3, np.float32)])
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
        >>> lrcore.save(path, opt)
        >>> lrcore.load(path, opt)
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an lrcore Optimizer, got {type(optimizer).__name__}")
    if not isinstance(params, (bool, np.bool_)):
        raise TypeError(f"params must be a bool, got {type(params).__name__}")
    # One snapshot, taken under the optimizer's step lock: state and parameters of the same moment.
    snapshot = optimizer.snapshot(params=params)
    state_dict = snapshot.state_dict
    arrays: Dict[str, np.ndarray] = {}
    state_meta: Dict[str, Any] = {}
    for index, entry in state_dict["state"].items():
        meta: Dict[str, Any] = {"step": int(entry.get("step", 0)), "arrays": [], "none": []}
        for name, value in entry.items():
            if name == "step":
                continue
            if value is None:
                meta["none"].append(name)
            else:
                arrays[f"state/{index}/{name}"] = value
                meta["arrays"].append(name)
        state_meta[str(index)] = meta
    param_list = _flat_params(optimizer)
    if snapshot.params is not None:
        for index, array in enumerate(snapshot.params):
            arrays[f"params/{index}"] = array
    metadata = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "optimizer": type(optimizer).__name__,
        "step_count": int(state_dict["step_count"]),
        "skipped_steps": int(state_dict["skipped_steps"]),
        "last_hyperparameters": _encode(state_dict["last_hyperparameters"], "last_hyperparameters"),
        "param_groups": [_encode(group, f"param_groups[{g}]") for g, group in enumerate(state_dict["param_groups"])],
        # Global-norm clipping (absent from older checkpoints, which load keeping the optimizer's settings).
        "clipping": {"max_grad_norm": _encode(state_dict["max_grad_norm"], "max_grad_norm"),
                     "norm_type": state_dict["norm_type"], "last_grad_norm": state_dict["last_grad_norm"]},
        "state": state_meta,
        "params": [{"shape": list(p.shape), "dtype": p.dtype.str} for p in param_list] if params else None,
        "num_params": len(param_list),
    }
    if "group_states" in state_dict:
        # Per-group state of the schedule-free rules: plain ints, floats and bools (JSON keeps them exactly).
        metadata["group_states"] = state_dict["group_states"]
    # bfloat16 arrays go in as their bits (numpy's .npy format cannot name ml_dtypes' type).
    bfloat16_entries = sorted(name for name, array in arrays.items() if array.dtype == bfloat16())
    for name in bfloat16_entries:
        arrays[name] = arrays[name].view(np.uint16)
    if bfloat16_entries:
        metadata["bfloat16"] = bfloat16_entries
    text = json.dumps(metadata, allow_nan=True)
    _atomic_savez(os.fspath(path), arrays, text)


def _atomic_savez(path: str, arrays: Dict[str, np.ndarray], metadata: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            # One mapping (array names never collide with the metadata key): numpy's stub types
            # **kwds as arrays and allow_pickle as bool, and a dict of arrays could name either.
            contents: Dict[str, Any] = {_METADATA_KEY: np.array(metadata), **arrays}
            np.savez(file, **contents)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Makes the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------- read --
class CheckpointError(ValueError):
    """A file that is not a valid checkpoint for the optimizer it is loaded into.

    Every failure of :func:`load` other than a missing or unreadable file is one
    of these (a ValueError), whatever the damage; the message says what is wrong.
    """


#: Largest metadata entry accepted (its JSON text; real ones are a few KiB per group).
_MAX_METADATA_BYTES = 64 * 1024 * 1024
#: Room for a .npy header in front of an array's bytes.
_NPY_HEADER_BYTES = 4096
_STATE_ENTRY = re.compile(r"state/(0|[1-9][0-9]{0,8})/([a-z_]{1,64})")
_PARAM_ENTRY = re.compile(r"params/(0|[1-9][0-9]{0,8})")


def _entry_limit(name: str, param_list: List[np.ndarray], state_names: Any) -> int:
    """The largest size the archive entry ``name`` may declare, or -1 when no such entry belongs there."""
    if name == _METADATA_KEY:
        return _MAX_METADATA_BYTES
    match = _STATE_ENTRY.fullmatch(name)
    if match and match.group(2) in state_names:
        index = int(match.group(1))
    else:
        match = _PARAM_ENTRY.fullmatch(name)
        if not match:
            return -1
        index = int(match.group(1))
    if index >= len(param_list):
        return -1
    if name.startswith("state/"):
        # A state array (or master copy) has at most 8 bytes per parameter element: a 16-bit
        # parameter's state may be float32, twice its parameter's bytes.
        return param_list[index].size * 8 + _NPY_HEADER_BYTES
    return param_list[index].nbytes + _NPY_HEADER_BYTES


def _read(path: PathLike, optimizer: Optimizer) -> Any:
    """Metadata and every array, read into memory after the archive's directory was checked.

    The metadata is read first; then entries that cannot belong to a
    checkpoint of ``optimizer`` are refused without being decompressed, and
    each entry may declare at most the size its array legitimately has, so a
    damaged or hostile file cannot make the read take more memory than the
    checkpoint itself.
    """
    where = os.fspath(path)
    param_list = _flat_params(optimizer)
    state_names = ({s.name for s in optimizer.rule.states} | {s.name for s in optimizer.rule.scalars}
                   | {MASTER_WEIGHT})
    with open(where, "rb") as file:  # FileNotFoundError propagates as is
        try:
            with zipfile.ZipFile(file) as archive:
                entries: Dict[str, zipfile.ZipInfo] = {}
                for info in archive.infolist():
                    name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                    if name in entries:
                        raise CheckpointError(f"entry {info.filename!r} appears twice")
                    entries[name] = info
                metadata_info = entries.pop(_METADATA_KEY, None)
                if metadata_info is None or metadata_info.file_size > _MAX_METADATA_BYTES:
                    raise CheckpointError(f"no {_METADATA_KEY} entry of at most {_MAX_METADATA_BYTES} bytes")
                with archive.open(metadata_info) as member:
                    text = _read_npy(member, metadata_info.file_size, _METADATA_KEY)
                metadata = _parse_metadata(text, where)
                if metadata.get("num_params") != len(param_list):
                    raise _Mismatch(f"the checkpoint has {metadata.get('num_params')!r} parameters but the "
                                    f"optimizer has {len(param_list)}")
                arrays = {}
                for name, info in entries.items():
                    limit = _entry_limit(name, param_list, state_names) if info.filename.endswith(".npy") else -1
                    if limit < 0:
                        raise CheckpointError(f"unexpected entry {info.filename!r}")
                    if info.file_size > limit:
                        raise CheckpointError(f"entry {info.filename!r} declares {info.file_size} bytes, "
                                              f"more than its array can have ({limit})")
                    with archive.open(info) as member:
                        arrays[name] = _read_npy(member, info.file_size, name)
                # bfloat16 arrays are stored as their uint16 bits (a .npy header cannot name ml_dtypes' type).
                bfloat16_entries = metadata.get("bfloat16", [])
                if not isinstance(bfloat16_entries, list) or not all(isinstance(n, str) for n in bfloat16_entries):
                    raise CheckpointError("bfloat16 is not a list of entry names")
                for name in bfloat16_entries:
                    array = arrays.get(name)
                    if array is None or array.dtype != np.uint16:
                        raise CheckpointError(f"bfloat16 entry {name!r} is missing or not stored as uint16")
                    arrays[name] = array.view(bfloat16())
        except _Mismatch as error:
            raise CheckpointError(str(error)) from None
        except CheckpointError as error:
            raise CheckpointError(f"cannot read checkpoint {where}: it is not an lrcore checkpoint or is "
                                  f"damaged ({error})") from None
        except Exception as error:  # any damage: truncation, bad CRC, bad header, deep nesting...
            raise CheckpointError(f"cannot read checkpoint {where}: it is not an lrcore checkpoint or is "
                                  f"damaged ({type(error).__name__}: {error})") from error
    return metadata, arrays


class _Mismatch(Exception):
    """A well-formed checkpoint that does not fit the optimizer (reported as is, not as damage)."""


def _parse_metadata(text: np.ndarray, where: str) -> Dict[str, Any]:
    try:
        if text.dtype.kind != "U" or text.shape != ():
            raise ValueError("the metadata is not a string")
        metadata = json.loads(str(text[()]))
    except Exception as error:  # deeply nested JSON raises RecursionError
        raise _Mismatch(f"{where} is not an lrcore checkpoint ({type(error).__name__})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise _Mismatch(f"{where} is not an lrcore checkpoint")
    if metadata.get("version") != FORMAT_VERSION:
        raise _Mismatch(
            f"checkpoint format version {metadata.get('version')!r} is not supported (this lrcore reads version "
            f"{FORMAT_VERSION})"
        )
    required = {"optimizer", "step_count", "skipped_steps", "param_groups", "state", "params", "num_params"}
    missing = required - set(metadata)
    if missing:
        raise _Mismatch(f"checkpoint {where} is damaged: metadata lacks {sorted(missing)}")
    return metadata


def _read_npy(member: Any, declared: int, name: str) -> np.ndarray:
    """One .npy entry, its header checked against the entry's declared size before any data is read."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise CheckpointError(f"entry {name!r} has .npy version {version}")
    if dtype.hasobject or fortran_order:
        raise CheckpointError(f"entry {name!r} holds {'objects' if dtype.hasobject else 'a Fortran-ordered array'}")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if shape else dtype.itemsize
    if nbytes > declared:
        raise CheckpointError(f"entry {name!r} claims {nbytes} bytes of data in a {declared}-byte entry")
    data = member.read(nbytes)
    if len(data) != nbytes:
        raise CheckpointError(f"entry {name!r} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckpointError(f"the checkpoint is damaged: {message}")


def _is_count(value: Any) -> bool:
    return type(value) is int and 0 <= value <= 2**63 - 1


def _state_dict_from(metadata: Dict[str, Any], arrays: Dict[str, np.ndarray], param_list: List[np.ndarray],
                     load_params: bool) -> Any:
    """The state_dict and parameter values a checkpoint describes, every field's type checked."""
    _require(isinstance(metadata["optimizer"], str), "optimizer is not a name")
    _require(_is_count(metadata["num_params"]), "num_params is not a count")
    if metadata["num_params"] != len(param_list):
        raise CheckpointError(
            f"the checkpoint has {metadata['num_params']} parameters but the optimizer has {len(param_list)}"
        )
    _require(_is_count(metadata["step_count"]), f"step_count is {metadata['step_count']!r}")
    _require(_is_count(metadata["skipped_steps"]), f"skipped_steps is {metadata['skipped_steps']!r}")
    _require(isinstance(metadata["param_groups"], list) and
             all(isinstance(g, dict) for g in metadata["param_groups"]), "param_groups is not a list of dicts")
    stored = metadata["params"]
    _require(stored is None or (isinstance(stored, list) and len(stored) == len(param_list)),
             "params must be null or describe every parameter")
    stored_params: List[np.ndarray] = []
    if stored is not None:
        for index, (meta, param) in enumerate(zip(stored, param_list)):
            array = arrays.get(f"params/{index}")
            if array is None:
                raise CheckpointError(f"the checkpoint is missing params/{index}")
            if array.shape != param.shape or array.dtype != param.dtype:
                raise CheckpointError(
                    f"params[{index}] in the checkpoint is {array.dtype} {array.shape}, "
                    f"the optimizer's is {param.dtype} {param.shape}"
                )
            _require(isinstance(meta, dict) and meta.get("shape") == list(array.shape) and
                     meta.get("dtype") == array.dtype.str,
                     f"params[{index}] is described as {meta!r} but stored as {array.dtype.str} {list(array.shape)}")
            stored_params.append(array)
    _require(isinstance(metadata["state"], dict), "state is not a dict")
    state: Dict[int, Dict[str, Any]] = {}
    for key, meta in metadata["state"].items():
        _require(isinstance(key, str) and key.isdecimal() and key.isascii() and len(key) < 10, f"state key {key!r}")
        index = int(key)
        if not 0 <= index < len(param_list):
            raise CheckpointError(f"the checkpoint has state for parameter {index}, out of range")
        _require(isinstance(meta, dict) and set(meta) == {"step", "arrays", "none"}, f"state[{index}]")
        _require(_is_count(meta["step"]), f"state[{index}] step is {meta['step']!r}")
        _require(isinstance(meta["arrays"], list) and isinstance(meta["none"], list) and
                 all(isinstance(n, str) for n in meta["arrays"] + meta["none"]), f"state[{index}] names")
        entry: Dict[str, Any] = {"step": meta["step"]}
        for name in meta["none"]:
            entry[name] = None
        for name in meta["arrays"]:
            value = arrays.get(f"state/{index}/{name}")
            if value is None:
                raise CheckpointError(f"the checkpoint is missing state/{index}/{name}")
            entry[name] = value
        state[index] = entry
    state_dict = {
        "state": state,
        "param_groups": [_decode(group) for group in metadata["param_groups"]],
        "step_count": metadata["step_count"],
        "skipped_steps": metadata["skipped_steps"],
        "last_hyperparameters": _decode(metadata.get("last_hyperparameters", [])),
    }
    clipping = metadata.get("clipping")
    if clipping is not None:
        _require(isinstance(clipping, dict) and set(clipping) == {"max_grad_norm", "norm_type", "last_grad_norm"},
                 "clipping is not a dict of max_grad_norm, norm_type and last_grad_norm")
        state_dict["max_grad_norm"] = _decode(clipping["max_grad_norm"])
        state_dict["norm_type"] = clipping["norm_type"]
        state_dict["last_grad_norm"] = clipping["last_grad_norm"]
    if "group_states" in metadata:
        state_dict["group_states"] = metadata["group_states"]  # its types and ranges: load_state_dict checks them
    return state_dict, (stored_params if load_params and stored is not None else None)


def load(path: PathLike, optimizer: Optimizer, *, params: bool = True) -> None:
    """Restores a checkpoint written by :func:`save` into ``optimizer`` (and its parameters).

    The optimizer must be built the same way as the one saved: same class,
    same parameter groups with the same shapes and dtypes, and the same
    schedule objects in the same places (their state is restored into them).
    Everything is checked before anything changes (the archive's entries and
    their sizes before any is decompressed, then every value as the optimizer
    would check it); on any error the optimizer and the parameters are left
    exactly as they were.

    Args:
        path: a file written by :func:`save`.
        optimizer: the optimizer to restore into.
        params: copy the stored parameters into the optimizer's parameter
            arrays (in place), when the checkpoint has them (default).

    Raises:
        FileNotFoundError: no file at ``path`` (other OSErrors when it cannot be read).
        CheckpointError: (a ValueError) not an lrcore checkpoint, an unsupported
            format version, a damaged file, or a mismatch (optimizer class,
            parameter count, shapes, dtypes, groups, schedules, invalid values),
            named in the message.
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an lrcore Optimizer, got {type(optimizer).__name__}")
    if not isinstance(params, (bool, np.bool_)):
        raise TypeError(f"params must be a bool, got {type(params).__name__}")
    metadata, arrays = _read(path, optimizer)
    if metadata["optimizer"] != type(optimizer).__name__:
        raise CheckpointError(
            f"the checkpoint is of a {metadata['optimizer']} optimizer, not {type(optimizer).__name__}"
        )
    try:
        state_dict, stored_params = _state_dict_from(metadata, arrays, _flat_params(optimizer), bool(params))
        optimizer.load_state_dict(state_dict, params=stored_params)
    except CheckpointError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
        # Content that is well-formed JSON but not what a checkpoint holds.
        raise CheckpointError(f"the checkpoint is damaged or does not fit this optimizer "
                              f"({type(error).__name__}: {error})") from None
