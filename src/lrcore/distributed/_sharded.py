"""ZeRO stage 1: the optimizer state sharded over MPI processes (see docs/distributed.md).

Every process holds all the parameters and computes its own gradients. A step
averages the gradients with a reduce-scatter (each process receives only its
shard), steps only its shard with an ordinary lrcore optimizer that holds the
state of that shard alone, and all-gathers the updated shards into every
process's parameters.
"""

from __future__ import annotations

import math
import pickle
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type

import numpy as np

from .. import _core
from .._rules import RuleDescription
from ..checkpoint import CheckpointError
from ..optim import Optimizer
from ..optim._optimizer import (_check_max_grad_norm, _check_norm_type, _export_hyperparameter, _import_hyperparameter,
                                _imported_value, _is_schedule)
from ._layout import Layout, NormPlan, Piece

__all__ = ["ShardedOptimizer", "flat_parameters"]


def unshardable(rule: RuleDescription) -> Optional[str]:
    """Why a rule's state cannot be cut into shards, or None when it can.

    A tensor may be cut anywhere when each element's update depends only on
    that element, its gradient, its state and per-tensor constants of the step
    and the hyperparameters (bias corrections, NAdam's ``mu_product``, ASGD's
    ``eta``): every piece of a tensor then keeps the same constants. The
    description says when that fails: state not shaped like the parameter
    (Adafactor's row and column statistics, a per-row accumulator) is a
    reduction over the whole tensor, per-group state with train/eval modes
    (schedule-free) would need the switch sharded too, and row-sparse-only
    rules take no dense gradients to reduce-scatter.
    """
    if rule.group_scalars or rule.has_modes:
        return "it keeps per-group state and train/eval modes, which are not sharded"
    if not rule.dense_gradients:
        return "it takes row-sparse gradients only"
    for state in rule.states:
        if state.per_row or state.shape != "param" or state.dims != "any":
            return f"its state {state.name!r} is not shaped like the parameter (a reduction over the whole tensor)"
    return None


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("lrcore.distributed needs mpi4py and an MPI library: pip install 'lrcore[mpi]'") from error
    return MPI


def _address(array: np.ndarray) -> int:
    address: int = array.__array_interface__["data"][0]
    return address


def _flat_view(arrays: Sequence[np.ndarray], dtype: np.dtype) -> Optional[np.ndarray]:
    """One 1-D array over exactly the memory of ``arrays`` when they lie end to end, C-contiguous,
    in one numpy buffer of ``dtype`` (as :func:`flat_parameters` makes them); else None."""
    nonempty = [a for a in arrays if a.size > 0]
    if not nonempty:
        return np.zeros(0, dtype)
    root = nonempty[0]
    while isinstance(root.base, np.ndarray):
        root = root.base
    if root.dtype != dtype or not root.flags.c_contiguous:
        return None
    expected = _address(nonempty[0])
    for array in nonempty:
        base = array
        while isinstance(base.base, np.ndarray):
            base = base.base
        if base is not root or not array.flags.c_contiguous or _address(array) != expected:
            return None
        expected += array.nbytes
    start, remainder = divmod(_address(nonempty[0]) - _address(root), dtype.itemsize)
    if remainder:
        return None
    total = sum(a.size for a in nonempty)
    flat: np.ndarray = root.reshape(-1)[start:start + total]
    return flat


def flat_parameters(arrays: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Copies of ``arrays`` that are views of one flat buffer per dtype, laid end to end in order.

    Handing these (instead of the originals) to :class:`ShardedOptimizer` makes
    its all-gather write straight into them, with no copy of the parameters
    per step. Use the returned arrays as the model's parameters.

    Examples:
        >>> import numpy as np
        >>> w, b = flat_parameters([np.ones((2, 3), np.float32), np.zeros(3, np.float32)])
        >>> w.base is b.base
        True
    """
    arrays = [np.asarray(a) for a in arrays]
    totals: Dict[np.dtype, int] = {}
    for a in arrays:
        totals[a.dtype] = totals.get(a.dtype, 0) + a.size
    buffers = {dtype: np.empty(total, dtype) for dtype, total in totals.items()}
    used = {dtype: 0 for dtype in totals}
    result = []
    for a in arrays:
        start = used[a.dtype]
        view = buffers[a.dtype][start:start + a.size].reshape(a.shape)
        np.copyto(view, a)
        used[a.dtype] = start + a.size
        result.append(view)
    return result


def _agree(comm: Any, error: Optional[BaseException], what: str) -> None:
    """Raises on every rank when ``error`` is set on any: the same exception type, naming the rank."""
    reports = comm.allgather(None if error is None else (type(error).__name__, str(error)))
    failed = [(rank, report) for rank, report in enumerate(reports) if report is not None]
    if not failed:
        return
    if error is not None:
        raise error
    rank, (kind, message) = failed[0]
    exception = _KINDS.get(kind, RuntimeError)
    raise exception(f"{what} failed on rank {rank} ({kind}: {message}); nothing was changed on any rank")


#: The exceptions another rank's failure is raised as, by name (anything else: RuntimeError).
_KINDS: Dict[str, Type[BaseException]] = {
    "TypeError": TypeError, "ValueError": ValueError, "CheckpointError": CheckpointError,
    "FileNotFoundError": FileNotFoundError, "PermissionError": PermissionError, "OSError": OSError,
}


class ShardedOptimizer:
    """An lrcore optimizer whose state is sharded over the processes of an MPI communicator (ZeRO-1).

    Construction and every method that says so are collective: every process of
    ``comm`` must call them, in the same order, with parameters of the same
    shapes and dtypes (and the same values: the optimizer does not broadcast them).

    Args:
        optimizer_class: an lrcore optimizer class of an element-wise rule
            (:class:`lrcore.SGD`, :class:`~lrcore.Adagrad`, :class:`~lrcore.RMSprop`,
            :class:`~lrcore.Adam`, :class:`~lrcore.AdamW`).
        params: a list of float32/float64 numpy arrays or of parameter groups
            (dicts ``{"params": [arrays], **overrides}``), as for the optimizer class.
            Arrays made by :func:`flat_parameters` are updated without a copy.
        comm: an mpi4py communicator; ``None`` is ``MPI.COMM_WORLD``. A world of
            one (``MPI.COMM_SELF``) works.
        skip_nonfinite, max_grad_norm, norm_type: as for :class:`lrcore.optim.Optimizer`;
            the finiteness and the norm are of the averaged gradients of all
            processes, agreed before anything is written.
        **hyperparameters: the optimizer class's hyperparameters (numbers or schedules).

    Attributes:
        rank, world_size: this process's rank in ``comm`` and the number of processes.
        layout: where every element lives (:class:`lrcore.distributed._layout.Layout`).
        optimizer: the ordinary lrcore optimizer stepping this rank's shard: one
            1-D parameter per tensor (this rank's piece, possibly empty).
        params: the full parameters, as given (updated in place by every step).
    """

    def __init__(self, optimizer_class: Type[Optimizer], params: Sequence[Any], comm: Any = None, *,
                 skip_nonfinite: bool = False, max_grad_norm: Any = None, norm_type: Any = 2.0,
                 **hyperparameters: Any) -> None:
        MPI = _mpi()
        self._MPI = MPI
        # A communicator of its own, so that its messages never meet the caller's.
        self.comm = (MPI.COMM_WORLD if comm is None else comm).Dup()
        self.rank: int = self.comm.Get_rank()
        self.world_size: int = self.comm.Get_size()
        error: Optional[BaseException] = None
        signature: Any = None
        try:
            self._setup(optimizer_class, params, skip_nonfinite, max_grad_norm, norm_type, hyperparameters)
            signature = [(shape, dtype.str) for shape, dtype in zip(self.layout.shapes, self.layout.dtypes)]
            signature.append(self._group_sizes)
        except (TypeError, ValueError) as caught:
            error = caught
        _agree(self.comm, error, "ShardedOptimizer construction")
        signatures = self.comm.allgather(signature)
        if any(s != signatures[0] for s in signatures):
            raise ValueError("ShardedOptimizer: the processes were given parameters of different shapes, dtypes "
                             "or groups")

    def _setup(self, optimizer_class: Type[Optimizer], params: Sequence[Any], skip_nonfinite: bool,
               max_grad_norm: Any, norm_type: Any, hyperparameters: Dict[str, Any]) -> None:
        if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, Optimizer)
                and hasattr(optimizer_class, "rule")):
            raise TypeError(f"optimizer_class must be an lrcore optimizer class, got {optimizer_class!r}")
        reason = unshardable(optimizer_class.rule)
        if reason is not None:
            raise TypeError(f"{optimizer_class.__name__} cannot be sharded: {reason}")
        if not isinstance(skip_nonfinite, (bool, np.bool_)):
            raise TypeError(f"skip_nonfinite must be a bool, got {type(skip_nonfinite).__name__}")
        self.optimizer_class = optimizer_class
        self.skip_nonfinite = bool(skip_nonfinite)
        self.max_grad_norm: Any = _check_max_grad_norm(max_grad_norm)
        self.norm_type: float = _check_norm_type(norm_type)
        self._last_grad_norm: Optional[float] = None
        #: Bytes of data this rank handed to MPI for the other ranks in its last step (gradients,
        #: parameters, norm partials and chunk heads, and the pickled agreement messages).
        self.last_step_bytes = 0
        self._lock = threading.Lock()
        if isinstance(params, np.ndarray) or not hasattr(params, "__iter__"):
            raise TypeError("params must be a list of arrays or of parameter groups")
        params = list(params)
        if not params:
            raise ValueError("params is empty: the optimizer has nothing to update")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        arrays: List[np.ndarray] = []
        self._group_sizes: List[int] = []
        overrides: List[Dict[str, Any]] = []
        for index, group in enumerate(groups):
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError('a parameter group must be a dict with a "params" entry')
            members = group["params"]
            members = [members] if isinstance(members, np.ndarray) else list(members)
            if not members:
                raise ValueError(f"param_groups[{index}] has no parameters")
            for k, member in enumerate(members):
                if not isinstance(member, np.ndarray):
                    raise TypeError(f"param_groups[{index}]['params'][{k}] must be a numpy array, "
                                    f"got {type(member).__name__}")
            arrays += members
            self._group_sizes.append(len(members))
            overrides.append({k: v for k, v in group.items() if k != "params"})
        _core.check_parameters(arrays)  # a stepped dtype, C-contiguous, writeable, no two sharing memory
        for index, array in enumerate(arrays):
            if array.dtype not in (np.float32, np.float64):
                # The ring collectives move float32/float64 buffers; 16-bit parameters are not sharded yet.
                raise TypeError(f"params[{index}] has dtype {array.dtype}: ShardedOptimizer takes float32 or "
                                f"float64 parameters (16-bit ones step with lrcore's optimizers in one process)")
        self.params: List[np.ndarray] = arrays
        self.layout = Layout([a.shape for a in arrays], [a.dtype for a in arrays], self.world_size)
        # One flat vector per dtype: the user's memory itself when the arrays lie end to end in
        # one buffer (the all-gather then writes into them), else a buffer of ours, copied out.
        self._flat: Dict[np.dtype, np.ndarray] = {}
        self._aliased: Dict[np.dtype, bool] = {}
        for dtype in self.layout.dtypes_present:
            members = [a for a in arrays if a.dtype == dtype]
            flat = _flat_view(members, dtype)
            self._aliased[dtype] = flat is not None
            if flat is None:
                flat = np.concatenate([a.reshape(-1) for a in members])
            self._flat[dtype] = flat
        self._pieces: List[Piece] = self.layout.pieces(self.rank)
        self._shard_start = {d: self.layout.shard(self.rank, d)[0] for d in self.layout.dtypes_present}
        piece_views = [self._flat_piece(self._flat, piece) for piece in self._pieces]
        inner_groups = []
        first = 0
        for size, extra in zip(self._group_sizes, overrides):
            inner_groups.append({"params": piece_views[first:first + size], **extra})
            first += size
        #: The ordinary optimizer of this rank's shard.
        self.optimizer: Optimizer = optimizer_class(inner_groups, **hyperparameters)
        # Gradient buffers: the reduce-scatter's input (the whole flat gradient) and its output (the shard).
        self._grad_flat = {d: np.zeros(self.layout.totals[d], d) for d in self.layout.dtypes_present}
        self._grad_shard = {d: np.zeros(self.layout.counts(d)[self.rank], d) for d in self.layout.dtypes_present}
        self._shard_grad_views = [self._shard_piece(piece) for piece in self._pieces]
        self._norm_plans: Dict[bytes, NormPlan] = {}
        self._ring_buffers: Dict[np.dtype, Tuple[np.ndarray, np.ndarray]] = {}

    def _flat_piece(self, flat: Dict[np.dtype, np.ndarray], piece: Piece) -> np.ndarray:
        dtype = self.layout.dtypes[piece.tensor]
        return flat[dtype][piece.flat_begin:piece.flat_begin + piece.end - piece.begin]

    def _shard_piece(self, piece: Piece) -> np.ndarray:
        dtype = self.layout.dtypes[piece.tensor]
        begin = piece.flat_begin - self._shard_start[dtype]
        return self._grad_shard[dtype][begin:begin + piece.end - piece.begin]

    # ------------------------------------------------------------ counters
    @property
    def step_count(self) -> int:
        return self.optimizer.step_count

    @property
    def skipped_steps(self) -> int:
        return self.optimizer.skipped_steps

    @property
    def param_groups(self) -> List[Dict[str, Any]]:
        """The shard optimizer's groups: hyperparameters may be edited between steps (on every rank
        alike); their "params" are this rank's pieces."""
        return self.optimizer.param_groups

    @property
    def last_grad_norm(self) -> Optional[float]:
        """The global norm of the averaged gradients of the last step (before clipping), also of a
        skipped one; None before any step and when the last step had clipping off."""
        return self._last_grad_norm

    def state_bytes(self) -> int:
        """Bytes of optimizer state arrays this rank holds."""
        return sum(a.nbytes for state in self.optimizer._states for arrays in state.values()
                   for a in arrays if a is not None)

    # ----------------------------------------------------------------- step
    def step(self, local_grads: Sequence[Optional[np.ndarray]]) -> bool:
        """One collective step on this process's gradients (one per parameter, in order; ``None``
        skips a parameter, and must then be ``None`` on every process).

        The gradients are checked on every rank and the results agreed before
        any communication that writes: a bad gradient on one rank (wrong shape,
        dtype or count) or an invalid hyperparameter raises on every rank, and
        nothing is modified anywhere. Then: the gradients are summed over the
        ranks with a reduce-scatter and divided by the world size (in the
        parameters' dtype); with ``max_grad_norm`` the global norm of those
        averaged gradients is computed exactly as one process computes it
        (bitwise), with ``skip_nonfinite`` their finiteness is agreed; this
        rank's shard is stepped; the shards are all-gathered into the
        parameters.

        Returns:
            True when the update was applied, False when it was skipped for a
            non-finite gradient (on every rank alike).
        """
        with self._lock:
            return self._step(local_grads)

    def _check_grads(self, local_grads: Any) -> List[Optional[np.ndarray]]:
        if isinstance(local_grads, np.ndarray) or not isinstance(local_grads, (list, tuple)):
            raise TypeError(f"grads must be a list of arrays (one per parameter), got {type(local_grads).__name__}")
        if len(local_grads) != len(self.params):
            raise ValueError(f"grads has {len(local_grads)} entries but the optimizer has {len(self.params)} "
                             "parameters")
        for index, (grad, param) in enumerate(zip(local_grads, self.params)):
            if grad is None:
                continue
            if not isinstance(grad, np.ndarray):
                raise TypeError(f"grads[{index}] must be a numpy array or None, got {type(grad).__name__}")
            if grad.dtype != param.dtype:
                raise TypeError(f"grads[{index}] must be {param.dtype} like its parameter, got {grad.dtype}")
            if grad.shape != param.shape:
                raise ValueError(f"grads[{index}] must have shape {param.shape} like its parameter, "
                                 f"got {grad.shape}")
        return list(local_grads)

    def _check_hyperparameters(self) -> Any:
        inner = self.optimizer
        t = inner.step_count
        for index, group in enumerate(inner.param_groups):
            inner.rule.native.check_hyperparameters(inner._resolve(group, t), f"param_groups[{index}]: ")
        max_grad_norm = self.max_grad_norm
        if _is_schedule(max_grad_norm):
            value = max_grad_norm(t)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
                    or not float(value) >= 0.0:
                raise ValueError(f"max_grad_norm's schedule gave {value!r} at step {t}; it must be a number >= 0")
            max_grad_norm = float(value)
        return max_grad_norm

    def _step(self, local_grads: Any) -> bool:
        MPI = self._MPI
        comm = self.comm
        error: Optional[BaseException] = None
        grads: List[Optional[np.ndarray]] = []
        max_grad_norm: Any = None
        try:
            grads = self._check_grads(local_grads)
            max_grad_norm = self._check_hyperparameters()
        except (TypeError, ValueError) as caught:
            error = caught
        active = [g is not None for g in grads] if error is None else []
        report = (None if error is None else (type(error).__name__, str(error)), active)
        others = self.world_size - 1
        sent = others * len(pickle.dumps(report, MPI.pickle.PROTOCOL))
        reports = comm.allgather(report)
        failed = [(rank, report[0]) for rank, report in enumerate(reports) if report[0] is not None]
        if failed:
            if error is not None:
                raise error
            rank, (kind, message) = failed[0]
            exception = _KINDS.get(kind, ValueError)
            raise exception(f"step failed on rank {rank} ({kind}: {message}); nothing was changed on any rank")
        if any(report[1] != active for report in reports):
            raise ValueError("step: the processes passed None for different parameters; nothing was changed")
        layout = self.layout
        # 1. The average of the gradients, this rank's shard of it only.
        for dtype in layout.dtypes_present:
            members = [k for k in range(len(grads)) if layout.dtypes[k] == dtype]
            present = [grads[k] for k in members]
            send = None
            if all(g is not None for g in present):
                send = _flat_view([g for g in present if g is not None], dtype)
            if send is None:
                send = self._grad_flat[dtype]
                for k in members:
                    grad = grads[k]
                    if grad is not None:
                        offset = layout.offsets[k]
                        np.copyto(send[offset:offset + layout.sizes[k]], grad.reshape(-1))
            shard = self._grad_shard[dtype]
            sent += self._reduce_scatter(send, shard, dtype)
            if self.world_size > 1:
                np.divide(shard, dtype.type(self.world_size), out=shard)
        shard_grads = [view if on else None for view, on in zip(self._shard_grad_views, active)]
        # 2. The global decisions: the norm (clipping) or the finiteness (skipping), agreed by all ranks.
        coefficient = 1.0
        finite = True
        norm: Optional[float] = None
        if max_grad_norm is not None:
            norm, norm_bytes = self._global_norm(active)
            sent += norm_bytes
            finite = math.isfinite(norm)
            if finite:
                coefficient = _core.gradients.clip_coefficient(norm, float(max_grad_norm))
        elif self.skip_nonfinite:
            local = bool(_core.gradients.all_finite(shard_grads))
            finite = bool(comm.allreduce(local, op=MPI.LAND))
            sent += others * len(pickle.dumps(local, MPI.pickle.PROTOCOL))
        self._last_grad_norm = norm
        if self.skip_nonfinite and not finite:
            self.optimizer.skipped_steps = self.optimizer.skipped_steps + 1
            self.last_step_bytes = sent
            return False
        if coefficient < 1.0:
            # What the fused clipping of a single process does first: each element times T(coefficient).
            for dtype, shard in self._grad_shard.items():
                np.multiply(shard, dtype.type(coefficient), out=shard)
        # 3. This rank's shard (the user's memory may have changed since the last step: take it).
        for dtype in layout.dtypes_present:
            if not self._aliased[dtype]:
                for piece, param in zip(self._pieces, self.params):
                    if param.dtype == dtype and piece.end > piece.begin:
                        np.copyto(self._flat_piece(self._flat, piece), param.reshape(-1)[piece.begin:piece.end])
        failure: Optional[BaseException] = None
        try:
            self.optimizer.step(shard_grads)
        except Exception as caught:  # checked above; reported to every rank rather than left to deadlock
            failure = caught
        _agree(comm, failure, "the shard step")
        sent += others * len(pickle.dumps(None, MPI.pickle.PROTOCOL))
        # 4. Every rank's updated shard into every rank's parameters.
        sent += self._all_gather()
        self.last_step_bytes = sent
        return True

    def _reduce_scatter(self, send: np.ndarray, shard: np.ndarray, dtype: np.dtype) -> int:
        """The sum over the ranks of their flat gradients ``send``, this rank's shard of it into
        ``shard``; returns the bytes this rank sent.

        A ring: in round i rank r passes the partial sum of shard (r - i - 1) to rank r + 1 and
        receives that of shard (r - i - 2) from rank r - 1, to which it adds its own gradient,
        so every rank sends (W - 1) shards, the least a reduce-scatter can. The order of the
        additions is fixed: shard r is ((g[r+1] + g[r+2]) + ...) + g[r]; for 2 ranks,
        g[other] + g[r], which is g[0] + g[1] exactly (addition commutes). (MPICH's
        Reduce_scatter took ~50 ms for 64 MB between two local processes; this ring and the
        all-gather's together ~20 ms.)
        """
        MPI = self._MPI
        rank, world = self.rank, self.world_size
        bounds = self.layout.bounds[dtype]
        if world == 1:
            np.copyto(shard, send[bounds[0]:bounds[1]])
            return 0
        mpi_type = MPI.FLOAT if dtype == np.float32 else MPI.DOUBLE
        work = self._ring_buffers.get(dtype)
        if work is None:
            largest = max(self.layout.counts(dtype))
            work = self._ring_buffers[dtype] = (np.empty(largest, dtype), np.empty(largest, dtype))
        sent = 0
        outgoing_partial: Optional[np.ndarray] = None
        for i in range(world - 1):
            outgoing, incoming = (rank - i - 1) % world, (rank - i - 2) % world
            out = send[bounds[outgoing]:bounds[outgoing + 1]] if outgoing_partial is None else outgoing_partial
            length = bounds[incoming + 1] - bounds[incoming]
            received = work[i % 2][:length]
            self.comm.Sendrecv([out, mpi_type], (rank + 1) % world, 1, [received, mpi_type], (rank - 1) % world, 1)
            sent += out.nbytes
            target = shard if i == world - 2 else received
            np.add(received, send[bounds[incoming]:bounds[incoming + 1]], out=target)
            outgoing_partial = target
        return sent

    def _all_gather(self) -> int:
        """Every rank's shard of the parameters into every rank's; returns the bytes this rank sent."""
        MPI = self._MPI
        sent = 0
        layout = self.layout
        rank, world = self.rank, self.world_size
        for dtype in layout.dtypes_present:
            flat = self._flat[dtype]
            bounds = layout.bounds[dtype]
            mpi_type = MPI.FLOAT if dtype == np.float32 else MPI.DOUBLE
            # A ring, in place: in round i each rank passes on the shard of rank (rank - i) to the
            # next rank, so every rank sends (W - 1) shards, the least an all-gather can. (MPICH's
            # Allgatherv was erratic here: 5 to 600 ms for 16 MB between two local processes.)
            for i in range(world - 1):
                outgoing, incoming = (rank - i) % world, (rank - i - 1) % world
                self.comm.Sendrecv([flat[bounds[outgoing]:bounds[outgoing + 1]], mpi_type], (rank + 1) % world, 0,
                                   [flat[bounds[incoming]:bounds[incoming + 1]], mpi_type], (rank - 1) % world, 0)
                sent += (bounds[outgoing + 1] - bounds[outgoing]) * dtype.itemsize
            if not self._aliased[dtype]:
                for k, param in enumerate(self.params):
                    if param.dtype == dtype:
                        offset = layout.offsets[k]
                        np.copyto(param.reshape(-1), flat[offset:offset + layout.sizes[k]])
        return sent

    def _global_norm(self, active: List[bool]) -> Tuple[float, int]:
        """The norm_type norm of the averaged gradients of all ranks, bitwise as one process computes it,
        and the bytes this rank sent for it."""
        MPI = self._MPI
        comm = self.comm
        key = bytes(active)
        plan = self._norm_plans.get(key)
        if plan is None:
            plan = self._norm_plans[key] = self.layout.norm_plan(active)
        rank, world = self.rank, self.world_size
        sources: List[np.ndarray] = []
        sent = 0
        for dtype in plan.by_dtype:
            shard = self._grad_shard[dtype]
            receive_counts = plan.receive_counts(dtype, rank)
            received = np.empty(sum(receive_counts), dtype)
            if world > 1:
                # The head of this shard that belongs to a chunk of an earlier rank goes to that rank.
                destination, head = plan.head(dtype, rank, shard)
                send_counts = [0] * world
                if destination >= 0:
                    send_counts[destination] = len(head)
                mpi_type = MPI.FLOAT if dtype == np.float32 else MPI.DOUBLE
                comm.Alltoallv([head, send_counts, mpi_type], [received, receive_counts, mpi_type])
                sent += head.nbytes
            sources += plan.sources(dtype, rank, shard, received)
        float32_partials, float64_partials = _core.gradients.norm_partials(sources, self.norm_type)
        counts = plan.partial_counts()
        everyone = np.empty(sum(counts), np.float64)
        mine = np.concatenate([float32_partials, float64_partials])
        comm.Allgatherv(mine, [everyone, counts, MPI.DOUBLE])
        sent += (world - 1) * mine.nbytes
        return float(_core.gradients.norm_from_partials(*plan.split(everyone), self.norm_type)), sent

    # ----------------------------------------------------------- state dict
    def state_dict(self) -> Dict[str, Any]:
        """This rank's shard of the state: the shard optimizer's :meth:`~lrcore.optim.Optimizer.state_dict`
        (its parameters are this rank's pieces, in tensor order) and the sharding."""
        with self._lock:
            return {
                "format": "lrcore.distributed.shard",
                "rank": self.rank,
                "world_size": self.world_size,
                "pieces": [(p.begin, p.end) for p in self._pieces],
                "optimizer": self.optimizer.state_dict(),
                "max_grad_norm": _export_hyperparameter(self.max_grad_norm),
                "norm_type": self.norm_type,
                "last_grad_norm": self._last_grad_norm,
            }

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restores a :meth:`state_dict` of the same rank of the same world size and parameters
        (not collective; for another world size use :func:`lrcore.distributed.load`)."""
        with self._lock:
            if not isinstance(state_dict, dict) or state_dict.get("format") != "lrcore.distributed.shard":
                raise ValueError("state_dict is not a ShardedOptimizer state_dict")
            if state_dict.get("world_size") != self.world_size or state_dict.get("rank") != self.rank:
                raise ValueError(f"state_dict is of rank {state_dict.get('rank')!r} of {state_dict.get('world_size')!r}, "
                                 f"this is rank {self.rank} of {self.world_size}")
            if [tuple(p) for p in state_dict.get("pieces", ())] != [(p.begin, p.end) for p in self._pieces]:
                raise ValueError("state_dict is of differently sized parameters")
            self._load_own_fields(state_dict, lambda: self.optimizer.load_state_dict(state_dict["optimizer"]))

    def _load_own_fields(self, fields: Dict[str, Any], load_optimizer: Any) -> None:
        """Checks this object's own saved fields, runs load_optimizer() (which checks and loads the
        shard optimizer, or raises with nothing changed), then sets the fields."""
        norm_type = _check_norm_type(fields.get("norm_type", self.norm_type))
        saved_norm = fields.get("last_grad_norm")
        if saved_norm is not None and (isinstance(saved_norm, bool) or not isinstance(saved_norm, (int, float))):
            raise ValueError(f"last_grad_norm must be a number or None, got {saved_norm!r}")
        saved_max = fields.get("max_grad_norm")
        _check_max_grad_norm(_imported_value(self.max_grad_norm, saved_max))
        load_optimizer()
        self.max_grad_norm = _import_hyperparameter(self.max_grad_norm, saved_max)
        self.norm_type = norm_type
        self._last_grad_norm = None if saved_norm is None else float(saved_norm)

    def _piece_list(self) -> List[Tuple[int, int]]:
        return [(p.begin, p.end) for p in self._pieces]
