"""Sharded checkpoints of a :class:`~lrcore.distributed.ShardedOptimizer`, loadable at any world size.

A checkpoint is a directory holding one shard file per rank and a manifest:

* ``shard-<tag>-<rank>-of-<world>.npz``: rank ``rank``'s shard optimizer saved
  by :func:`lrcore.checkpoint.save` (its state, counters, hyperparameters and
  schedule states, and its parameter pieces), written atomically by that rank;
* ``manifest.npz``: what the shards are (format, the optimizer class, every
  tensor's shape and dtype, the groups, the world size, the shard files, and
  the sharded optimizer's own clipping settings), written atomically by rank 0
  once every shard is on disk. The manifest is what makes a checkpoint: a
  crash before it is replaced leaves the previous checkpoint whole (its shards
  have other names); the shard files no manifest names are removed after it.

Reading goes through :func:`lrcore.checkpoint.load`: each shard is loaded,
with all of its checks and bounds, into a scratch optimizer of that shard's
piece sizes; the pieces the loading rank owns under its own world size are cut
from those, checked for agreement, and loaded into its shard optimizer. Every
rank checks everything before any rank changes anything.
"""

from __future__ import annotations

import copy
import glob
import json
import os
import secrets
import zipfile
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from .. import checkpoint as _checkpoint
from ..checkpoint import CheckpointError
from ..optim._optimizer import _export_hyperparameter
from ._layout import Layout
from ._sharded import ShardedOptimizer, _agree

__all__ = ["MANIFEST", "load", "save"]

PathLike = Union[str, "os.PathLike[str]"]

MANIFEST = "manifest.npz"
FORMAT_NAME = "lrcore.distributed.checkpoint"
FORMAT_VERSION = 1


def _shard_name(tag: str, rank: int, world_size: int) -> str:
    return f"shard-{tag}-{rank:05d}-of-{world_size:05d}.npz"


def save(path: PathLike, optimizer: ShardedOptimizer) -> None:
    """Writes a sharded checkpoint of ``optimizer`` into the directory ``path`` (collective).

    Every rank writes its shard (state and parameter pieces) atomically; rank 0
    then writes the manifest atomically, and removes the shards of the
    checkpoint it replaces. If any rank fails, every rank raises and the
    previous checkpoint in ``path`` (if any) stays the valid one.

    Raises:
        TypeError: ``optimizer`` is not a ShardedOptimizer.
        OSError, TypeError: on every rank, when any rank could not write its shard.
    """
    if not isinstance(optimizer, ShardedOptimizer):
        raise TypeError(f"optimizer must be a ShardedOptimizer, got {type(optimizer).__name__}")
    comm = optimizer.comm
    directory = os.fspath(path)
    tag = comm.bcast(f"{optimizer.step_count:012d}-{secrets.token_hex(4)}" if optimizer.rank == 0 else None, root=0)
    shard = os.path.join(directory, _shard_name(tag, optimizer.rank, optimizer.world_size))
    error: Optional[BaseException] = None
    try:
        if optimizer.rank == 0:
            os.makedirs(directory, exist_ok=True)
    except OSError as caught:
        error = caught
    _agree(comm, error, "creating the checkpoint directory")
    with optimizer._lock:
        try:
            _checkpoint.save(shard, optimizer.optimizer, params=True)
            fields = {"max_grad_norm": _checkpoint._encode(_export_hyperparameter(optimizer.max_grad_norm),
                                                           "max_grad_norm"),
                      "norm_type": optimizer.norm_type, "last_grad_norm": optimizer.last_grad_norm}
        except (OSError, TypeError, ValueError) as caught:
            error = caught
        try:
            _agree(comm, error, "writing a checkpoint shard")
        except BaseException:
            _remove(shard)
            raise
        layout = optimizer.layout
        if optimizer.rank == 0:
            manifest: Dict[str, Any] = {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "optimizer": optimizer.optimizer_class.__name__,
                "world_size": optimizer.world_size,
                "shards": [_shard_name(tag, r, optimizer.world_size) for r in range(optimizer.world_size)],
                "tensors": [{"shape": list(shape), "dtype": dtype.str}
                            for shape, dtype in zip(layout.shapes, layout.dtypes)],
                "group_sizes": list(optimizer._group_sizes),
                "step_count": optimizer.step_count,
                "sharded": fields,
            }
            try:
                _checkpoint._atomic_savez(os.path.join(directory, MANIFEST), {}, json.dumps(manifest, allow_nan=True))
            except OSError as caught:
                error = caught
        try:
            _agree(comm, error, "writing the checkpoint manifest")
        except BaseException:
            _remove(shard)
            raise
        if optimizer.rank == 0:
            named = set(manifest["shards"])
            for old in glob.glob(os.path.join(glob.escape(directory), "shard-*.npz")):
                if os.path.basename(old) not in named:
                    _remove(old)
        comm.barrier()


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _read_manifest(directory: str) -> Dict[str, Any]:
    """The manifest's metadata, read with lrcore.checkpoint's bounds (size, entries, .npy header)."""
    where = os.path.join(directory, MANIFEST)
    with open(where, "rb") as file:  # FileNotFoundError propagates as is
        try:
            with zipfile.ZipFile(file) as archive:
                infos = archive.infolist()
                if len(infos) != 1 or infos[0].filename != _checkpoint._METADATA_KEY + ".npy" \
                        or infos[0].file_size > _checkpoint._MAX_METADATA_BYTES:
                    raise CheckpointError("it must hold exactly one metadata entry of bounded size")
                with archive.open(infos[0]) as member:
                    text = _checkpoint._read_npy(member, infos[0].file_size, _checkpoint._METADATA_KEY)
            if text.dtype.kind != "U" or text.shape != ():
                raise CheckpointError("its metadata is not a string")
            manifest = json.loads(str(text[()]))
        except CheckpointError as error:
            raise CheckpointError(f"{where} is not a valid lrcore.distributed manifest: {error}") from None
        except Exception as error:
            raise CheckpointError(f"{where} is not a valid lrcore.distributed manifest "
                                  f"({type(error).__name__}: {error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{where} is not an lrcore.distributed manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{where}: format version {manifest.get('version')!r} is not supported "
                              f"(this lrcore reads version {FORMAT_VERSION})")
    required = {"optimizer", "world_size", "shards", "tensors", "group_sizes", "sharded"}
    if not required <= set(manifest):
        raise CheckpointError(f"{where} is damaged: it lacks {sorted(required - set(manifest))}")
    world = manifest["world_size"]
    shards = manifest["shards"]
    if type(world) is not int or not 1 <= world <= 1 << 20 or not isinstance(shards, list) \
            or len(shards) != world or not all(isinstance(s, str) and os.path.basename(s) == s and
                                               s.startswith("shard-") for s in shards):
        raise CheckpointError(f"{where} is damaged: bad world_size or shard list")
    return manifest


def _check_fits(manifest: Dict[str, Any], optimizer: ShardedOptimizer) -> Layout:
    """The saved layout, after checking the manifest describes ``optimizer``'s parameters."""
    layout = optimizer.layout
    if manifest["optimizer"] != optimizer.optimizer_class.__name__:
        raise CheckpointError(f"the checkpoint is of a {manifest['optimizer']!r} optimizer, "
                              f"not {optimizer.optimizer_class.__name__}")
    mine = [{"shape": list(shape), "dtype": dtype.str} for shape, dtype in zip(layout.shapes, layout.dtypes)]
    if manifest["tensors"] != mine:
        raise CheckpointError("the checkpoint's parameters (shapes, dtypes, order) differ from the optimizer's")
    if manifest["group_sizes"] != list(optimizer._group_sizes):
        raise CheckpointError("the checkpoint's parameter groups differ from the optimizer's")
    return Layout(layout.shapes, layout.dtypes, manifest["world_size"])


def _scratch_optimizer(optimizer: ShardedOptimizer, old: Layout, rank: int) -> Any:
    """An optimizer like ``optimizer``'s shard optimizer, for the pieces of ``rank`` in ``old``,
    with copies of its hyperparameters (so that loading into it changes no schedule of ours)."""
    inner = optimizer.optimizer
    pieces = old.pieces(rank)
    arrays = [np.zeros(p.end - p.begin, old.dtypes[p.tensor]) for p in pieces]
    groups = []
    first = 0
    for size, group in zip(optimizer._group_sizes, inner.param_groups):
        hyper = copy.deepcopy({k: v for k, v in group.items() if k not in ("params", "param_names")})
        groups.append({"params": arrays[first:first + size], **hyper})
        first += size
    # The classes' constructors are written from their rule (params, then the hyperparameters).
    make: Any = optimizer.optimizer_class
    return make(groups), arrays


def _gather_state(optimizer: ShardedOptimizer, directory: str, manifest: Dict[str, Any],
                  old: Layout) -> Tuple[Dict[str, Any], List[np.ndarray]]:
    """This rank's new shard state_dict and parameter pieces, cut from the saved shards."""
    new_pieces = optimizer._pieces
    wanted = set()
    for piece in new_pieces:
        if piece.end <= piece.begin:
            continue
        for q, old_piece in enumerate(old.pieces(r) for r in range(old.world_size)):
            theirs = old_piece[piece.tensor]
            if theirs.begin < piece.end and piece.begin < theirs.end:
                wanted.add(q)
    if not wanted:
        wanted.add(0)  # counters, hyperparameters and schedule states are in every shard
    loaded: Dict[int, Tuple[Dict[str, Any], List[np.ndarray]]] = {}
    for q in sorted(wanted):
        scratch, arrays = _scratch_optimizer(optimizer, old, q)
        _checkpoint.load(os.path.join(directory, manifest["shards"][q]), scratch, params=True)
        loaded[q] = (scratch.state_dict(), arrays)
    first_state = loaded[min(loaded)][0]
    for q, (state, _) in loaded.items():
        for key in ("step_count", "skipped_steps"):
            if state[key] != first_state[key]:
                raise CheckpointError(f"the checkpoint's shards disagree on {key} ({first_state[key]} and "
                                      f"{state[key]} in shard {q})")
    entries: Dict[int, Dict[str, Any]] = {}
    params: List[np.ndarray] = []
    for piece in new_pieces:
        k = piece.tensor
        sources = sorted(loaded)
        saved = [loaded[q][0]["state"].get(k) for q in sources]
        steps = {0 if entry is None else entry["step"] for entry in saved}
        names = {tuple(sorted(n for n, v in entry.items() if n != "step" and v is not None)) if entry else ()
                 for entry in saved}
        if len(steps) != 1 or len(names) != 1:
            raise CheckpointError(f"the checkpoint's shards disagree on the state of parameter {k}")
        parts: Dict[str, List[np.ndarray]] = {name: [] for name in next(iter(names))}
        param_parts = []
        for q, entry in zip(sources, saved):
            theirs = old.pieces(q)[k]
            begin, end = max(piece.begin, theirs.begin), min(piece.end, theirs.end)
            if begin >= end:
                continue
            cut = slice(begin - theirs.begin, end - theirs.begin)
            param_parts.append(loaded[q][1][k][cut])
            for name in parts:
                parts[name].append(entry[name][cut])
        dtype = old.dtypes[k]
        params.append(np.concatenate(param_parts) if param_parts else np.zeros(0, dtype))
        step = next(iter(steps))
        if step:
            entry_out: Dict[str, Any] = {"step": step}
            for name, pieces in parts.items():
                entry_out[name] = np.concatenate(pieces) if pieces else np.zeros(0, dtype)
            entries[k] = entry_out
    state_dict = dict(first_state)
    state_dict["state"] = entries
    return state_dict, params


def load(path: PathLike, optimizer: ShardedOptimizer) -> None:
    """Restores a checkpoint written by :func:`save` at any world size into ``optimizer`` (collective).

    ``optimizer`` must be built like the saved one (same class, parameter
    shapes, dtypes, order and groups, the same schedule objects in the same
    places). Each rank reads the shards that overlap its own and checks them
    (every check of :func:`lrcore.checkpoint.load`, plus the shards'
    agreement); only when every rank has succeeded does any rank change its
    optimizer, then the parameters are all-gathered so that every rank has
    all of them.

    Raises:
        FileNotFoundError, CheckpointError: on every rank, when any rank fails
            (nothing is changed anywhere).
    """
    if not isinstance(optimizer, ShardedOptimizer):
        raise TypeError(f"optimizer must be a ShardedOptimizer, got {type(optimizer).__name__}")
    comm = optimizer.comm
    directory = os.fspath(path)
    error: Optional[BaseException] = None
    state_dict: Dict[str, Any] = {}
    params: List[np.ndarray] = []
    fields: Dict[str, Any] = {}
    with optimizer._lock:
        try:
            manifest = _read_manifest(directory)
            old = _check_fits(manifest, optimizer)
            state_dict, params = _gather_state(optimizer, directory, manifest, old)
            fields = manifest["sharded"]
            if not isinstance(fields, dict):
                raise CheckpointError("the manifest's sharded settings are damaged")
            fields = {k: _checkpoint._decode(v) for k, v in fields.items()}
            # Every check of the real load, without changing anything: a dry run on a copy.
            trial, _ = _scratch_optimizer(optimizer, optimizer.layout, optimizer.rank)
            trial.load_state_dict(state_dict, params=params)
        except (OSError, CheckpointError) as caught:
            error = caught
        except (ValueError, TypeError, KeyError) as caught:
            error = CheckpointError(f"the checkpoint does not fit this optimizer ({type(caught).__name__}: {caught})")
        _agree(comm, error, "loading the checkpoint")
        failure: Optional[BaseException] = None
        try:
            optimizer._load_own_fields(fields, lambda: optimizer.optimizer.load_state_dict(state_dict, params=params))
        except Exception as caught:
            failure = caught
        _agree(comm, failure, "applying the checkpoint")
        optimizer._all_gather()
