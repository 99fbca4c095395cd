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
import tempfile
import zipfile
from typing import Any, Dict, List, Union

import numpy as np

from .optim import Optimizer

__all__ = ["FORMAT_VERSION", "load", "save"]

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
        "param_groups": [_encode(group, f"param_groups[{g}]") for g, group in enumerate(state_dict["param_groups"])],
        "state": state_meta,
        "params": [{"shape": list(p.shape), "dtype": p.dtype.str} for p in param_list] if params else None,
        "num_params": len(param_list),
    }
    text = json.dumps(metadata, allow_nan=True)
    _atomic_savez(os.fspath(path), arrays, text)


def _atomic_savez(path: str, arrays: Dict[str, np.ndarray], metadata: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **{_METADATA_KEY: np.array(metadata)}, **arrays)
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
def _read(path: PathLike) -> Any:
    """Metadata and every array, fully read into memory (a damaged file fails here, before any change)."""
    with open(os.fspath(path), "rb") as file:  # FileNotFoundError propagates as is
        try:
            with np.load(file, allow_pickle=False) as archive:
                if _METADATA_KEY not in archive.files:
                    raise ValueError(f"no {_METADATA_KEY} entry")
                metadata = json.loads(str(archive[_METADATA_KEY][()]))
                arrays = {name: archive[name] for name in archive.files if name != _METADATA_KEY}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise ValueError(f"cannot read checkpoint {os.fspath(path)}: it is not an lrcore checkpoint or is "
                             f"damaged ({error})") from error
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ValueError(f"{os.fspath(path)} is not an lrcore checkpoint")
    if metadata.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint format version {metadata.get('version')!r} is not supported (this lrcore reads version "
            f"{FORMAT_VERSION})"
        )
    required = {"optimizer", "step_count", "skipped_steps", "param_groups", "state", "params", "num_params"}
    missing = required - set(metadata)
    if missing:
        raise ValueError(f"checkpoint {os.fspath(path)} is damaged: metadata lacks {sorted(missing)}")
    return metadata, arrays


def load(path: PathLike, optimizer: Optimizer, *, params: bool = True) -> None:
    """Restores a checkpoint written by :func:`save` into ``optimizer`` (and its parameters).

    The optimizer must be built the same way as the one saved: same class,
    same parameter groups with the same shapes and dtypes, and the same
    schedule objects in the same places (their state is restored into them).
    Everything is checked before anything changes; on any error the optimizer
    and the parameters are left exactly as they were.

    Args:
        path: a file written by :func:`save`.
        optimizer: the optimizer to restore into.
        params: copy the stored parameters into the optimizer's parameter
            arrays (in place), when the checkpoint has them (default).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not an lrcore checkpoint, an unsupported format version, a
            damaged file, or a mismatch (optimizer class, parameter count,
            shapes, dtypes, groups, schedules), named in the message.
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an lrcore Optimizer, got {type(optimizer).__name__}")
    metadata, arrays = _read(path)
    if metadata["optimizer"] != type(optimizer).__name__:
        raise ValueError(
            f"the checkpoint is of a {metadata['optimizer']} optimizer, not {type(optimizer).__name__}"
        )
    param_list = _flat_params(optimizer)
    if metadata["num_params"] != len(param_list):
        raise ValueError(
            f"the checkpoint has {metadata['num_params']} parameters but the optimizer has {len(param_list)}"
        )
    stored_params = []
    if params and metadata["params"] is not None:
        for index, (meta, param) in enumerate(zip(metadata["params"], param_list)):
            stored = arrays.get(f"params/{index}")
            if stored is None:
                raise ValueError(f"the checkpoint is missing params/{index}")
            if stored.shape != param.shape or stored.dtype != param.dtype:
                raise ValueError(
                    f"params[{index}] in the checkpoint is {stored.dtype} {stored.shape}, "
                    f"the optimizer's is {param.dtype} {param.shape}"
                )
            stored_params.append(stored)
    state: Dict[int, Dict[str, Any]] = {}
    for key, meta in metadata["state"].items():
        index = int(key)
        if not 0 <= index < len(param_list):
            raise ValueError(f"the checkpoint has state for parameter {index}, out of range")
        entry: Dict[str, Any] = {"step": int(meta["step"])}
        for name in meta["none"]:
            entry[name] = None
        for name in meta["arrays"]:
            value = arrays.get(f"state/{index}/{name}")
            if value is None:
                raise ValueError(f"the checkpoint is missing state/{index}/{name}")
            entry[name] = value
        state[index] = entry
    state_dict = {
        "state": state,
        "param_groups": [_decode(group) for group in metadata["param_groups"]],
        "step_count": metadata["step_count"],
        "skipped_steps": metadata["skipped_steps"],
    }
    # load_state_dict checks before it applies, but a schedule refusing its
    # state could fail midway: put the previous state back then.
    previous = optimizer.snapshot()
    try:
        optimizer.load_state_dict(state_dict, params=stored_params if stored_params else None)
    except BaseException:
        previous.restore()
        raise

