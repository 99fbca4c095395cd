"""The ``embedding`` workload: row-sparse steps on one large table.

A 2^20 x 64 table (the bench's dtype) receives, each step, a gradient of 16384
row indices drawn from a Zipf distribution (exponent 1.1, a fixed seed; the
ranks are scattered over the table by a fixed permutation, as hashed ids are)
with one random gradient row each: the shape of a recommender's embedding
update, where a few thousand distinct rows of millions change per step.

lrcore's Adagrad (sparse rows), SparseAdam, RowWiseAdagrad and SGD (sparse rows)
are timed against torch.optim.Adagrad and torch.optim.SparseAdam on torch's
sparse COO gradient of the same rows. Before anything is timed, each contender
takes two steps from the same start and is checked against lrcore.reference
(lrcore bitwise, torch within the bench's tolerance, and for both: rows not
referenced bitwise unchanged).

Throughput is stated over the bytes a step must move: the gradient values
read, and each distinct row read and written in the table and in each state
array (row-wise AdaGrad's per-row accumulator counted as one value per row).
The roof is lrcore's streaming roof kernel (u <- u + g over arrays far larger
than the caches) on this machine, in GB/s; scattered rows cannot beat it.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple

import numpy as np

from .. import _core, reference
from .._runtime import get_num_threads, set_num_threads
from ..optim import SGD, Adagrad, Optimizer, RowWiseAdagrad, SparseAdam
from ._contenders import torch_module
from ._report import format_seconds, format_spread
from ._timing import Timed, TimingBudget, measure_interleaved
from ._verify import TOLERANCE, deviation

__all__ = ["EMBEDDING", "EmbeddingResult", "embedding_gradients", "print_embedding", "run_embedding"]

EMBEDDING = "embedding"
ROWS = 1 << 20
WIDTH = 64
INDICES = 16384
ZIPF_EXPONENT = 1.1
#: Distinct gradients the timed steps cycle through (so the rows are not all in cache from the last step).
GRADIENTS = 4
#: Elements of each array of the roof measurement (3 x 64 MiB in float32: far beyond the caches).
ROOF_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class _Contender:
    name: str
    title: str
    state_arrays: float  # state values per table element (a per-row accumulator: 1 / WIDTH)
    make: Callable[[np.ndarray], Optimizer]
    reference: Callable[..., None]
    reference_state: Callable[[np.ndarray], List[Any]]
    torch: Optional[str] = None  # the torch.optim class of the same update, timed against it


def _zeros_like(table: np.ndarray) -> List[np.ndarray]:
    return [np.zeros_like(table)]


CONTENDERS: Tuple[_Contender, ...] = (
    _Contender("lrcore-Adagrad", "lrcore Adagrad lr=1e-2 (sparse rows)", 1.0,
               lambda t: Adagrad([t], lr=1e-2), reference.adagrad,
               lambda t: [_zeros_like(t), np.zeros(1, np.int64)], torch="Adagrad"),
    _Contender("lrcore-SparseAdam", "lrcore SparseAdam lr=1e-3", 2.0,
               lambda t: SparseAdam([t], lr=1e-3), reference.sparse_adam,
               lambda t: [_zeros_like(t), _zeros_like(t), np.zeros(1, np.int64)], torch="SparseAdam"),
    _Contender("lrcore-RowWiseAdagrad", "lrcore RowWiseAdagrad lr=1e-2", 1.0 / WIDTH,
               lambda t: RowWiseAdagrad([t], lr=1e-2), reference.rowwise_adagrad,
               lambda t: [[np.zeros(t.shape[:1], t.dtype)]]),
    _Contender("lrcore-SGD", "lrcore SGD lr=1e-2 (sparse rows)", 0.0,
               lambda t: SGD([t], lr=1e-2), reference.sgd, lambda t: []),
)
_TORCH_ARGUMENTS = {"Adagrad": {"lr": 1e-2}, "SparseAdam": {"lr": 1e-3}}


def embedding_gradients(dtype: Any, seed: int = 0, count: int = GRADIENTS) -> List[_core.SparseRows]:
    """The workload's gradients: ``count`` SparseRows of INDICES Zipf-distributed rows each (fixed seed)."""
    rng = np.random.default_rng(seed)
    scatter = rng.permutation(ROWS)
    gradients = []
    for _ in range(count):
        ranks = np.empty(0, dtype=np.int64)
        while len(ranks) < INDICES:
            draw = rng.zipf(ZIPF_EXPONENT, 2 * INDICES) - 1
            ranks = np.concatenate([ranks, draw[draw < ROWS]])
        indices = scatter[ranks[:INDICES]].astype(np.int64)
        values = rng.standard_normal((INDICES, WIDTH)).astype(dtype)
        gradients.append(_core.SparseRows(indices, values))
    return gradients


@dataclass
class EmbeddingEntry:
    name: str
    title: str
    status: str = "ok"
    reason: Optional[str] = None
    deviation: Optional[float] = None
    seconds: Optional[float] = None
    spread: Optional[float] = None
    bytes_per_step: float = 0.0
    versus: Optional[str] = None  # the torch entry it is compared with

    @property
    def gigabytes_per_second(self) -> Optional[float]:
        return self.bytes_per_step / self.seconds / 1e9 if self.seconds else None


@dataclass
class EmbeddingResult:
    """One run of the embedding workload at one thread count."""

    dtype: str
    threads: int
    distinct_rows: float = 0.0  # mean over the gradients
    roof_gigabytes_per_second: Optional[float] = None
    status: str = "ok"
    reason: Optional[str] = None
    entries: Dict[str, EmbeddingEntry] = field(default_factory=dict)

    def speedup(self, name: str) -> Optional[float]:
        """How many times faster lrcore's entry is than the torch entry it is compared with."""
        entry = self.entries.get(name)
        if entry is None or entry.versus is None or entry.seconds is None:
            return None
        other = self.entries.get(entry.versus)
        return other.seconds / entry.seconds if other is not None and other.seconds else None


def _bytes_per_step(gradients: Sequence[_core.SparseRows], state_arrays: float, itemsize: int) -> float:
    """Mean bytes one step must move: values read, each distinct row read and written (table and state)."""
    total = 0.0
    for g in gradients:
        distinct = len(np.unique(g.indices))
        total += (g.values.size + 2 * distinct * WIDTH * (1.0 + state_arrays)) * itemsize
    return total / len(gradients)


def _check(table: np.ndarray, expected: np.ndarray, initial: np.ndarray, rows: np.ndarray, exact: bool) -> float:
    """The deviation over the rows referenced (0 when bitwise equal); inf when any other row changed."""
    changed = np.flatnonzero(np.any(table != initial, axis=1))
    if not np.isin(changed, rows).all():
        return float("inf")
    if exact:
        return 0.0 if np.array_equal(table[rows], expected[rows]) else float("inf")
    return deviation([table[rows]], [expected[rows]], [initial[rows]])


def _roof(dtype: np.dtype, budget: TimingBudget) -> float:
    """Streaming GB/s of u <- u + g over one read and two updated arrays of ROOF_ELEMENTS (beyond the caches)."""
    size = ROOF_ELEMENTS
    inputs = [[np.ones(size, dtype)]]
    updates = [[np.zeros(size, dtype), np.zeros(size, dtype)]]
    samples = measure_interleaved([Timed("roof", lambda: _core.bench.roof_stream(inputs, updates))], budget)
    return 5 * size * dtype.itemsize / samples["roof"].median / 1e9


class _TorchStep:
    """torch.optim.<name> on a tensor sharing the table's memory, stepping sparse COO gradients."""

    def __init__(self, torch: Any, name: str, table: np.ndarray, gradients: Sequence[_core.SparseRows]) -> None:
        self.weight = torch.nn.Parameter(torch.from_numpy(table))
        self.optimizer = getattr(torch.optim, name)([self.weight], **_TORCH_ARGUMENTS[name])
        self.invariants = torch.sparse.check_sparse_tensor_invariants
        with torch.sparse.check_sparse_tensor_invariants(enable=False):
            self.grads = [torch.sparse_coo_tensor(torch.from_numpy(g.indices)[None], torch.from_numpy(g.values),
                                                  table.shape, check_invariants=False) for g in gradients]
        self.next = 0

    def step(self) -> None:
        self.weight.grad = self.grads[self.next]
        self.next = (self.next + 1) % len(self.grads)
        # Invariant checks explicitly off (as torch's default, but without its warning about it).
        with self.invariants(enable=False):
            self.optimizer.step()


class _LrcoreStep:
    def __init__(self, optimizer: Optimizer, gradients: Sequence[_core.SparseRows]) -> None:
        self.optimizer = optimizer
        self.grads = [[g] for g in gradients]
        self.next = 0

    def step(self) -> None:
        grads = self.grads[self.next]
        self.next = (self.next + 1) % len(self.grads)
        self.optimizer.step(grads)


def run_embedding(dtype: Any, threads: int, budget: TimingBudget, with_torch: bool, seed: int = 0,
                  phase: Callable[[str], None] = lambda _: None) -> EmbeddingResult:
    """Verifies, then times, every contender on the embedding workload at ``threads`` threads."""
    dtype = np.dtype(dtype)
    result = EmbeddingResult(dtype.name, threads)
    torch = torch_module() if with_torch else None
    previous_threads = get_num_threads()
    previous_torch_threads = torch.get_num_threads() if torch is not None else None
    set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        phase("making the table")
        gradients = embedding_gradients(dtype, seed)
        result.distinct_rows = float(np.mean([len(np.unique(g.indices)) for g in gradients]))
        initial = np.random.default_rng(seed + 1).standard_normal((ROWS, WIDTH)).astype(dtype)
        result.roof_gigabytes_per_second = _roof(dtype, budget)
        for contender in CONTENDERS:
            # One lrcore rule and its torch counterpart at a time: at most two tables and their state live.
            phase(f"verifying {contender.name}")
            group: List[Timed] = []
            entry = EmbeddingEntry(contender.name, contender.title,
                                   bytes_per_step=_bytes_per_step(gradients, contender.state_arrays, dtype.itemsize))
            result.entries[contender.name] = entry
            expected = initial.copy()
            expected_state = contender.reference_state(expected)
            for g in gradients[:2]:
                contender.reference([expected], [g], *expected_state, **_reference_arguments(contender))
            del expected_state
            rows = np.unique(np.concatenate([g.indices for g in gradients[:2]]))
            table = initial.copy()
            runner = _LrcoreStep(contender.make(table), gradients)
            runner.step()
            runner.step()
            entry.deviation = _check(table, expected, initial, rows, exact=True)
            if entry.deviation != 0.0:
                entry.status, entry.reason = "mismatch", "differs from lrcore.reference"
                result.status, result.reason = "FAILED", f"{contender.name} does not match lrcore.reference"
            else:
                group.append(Timed(contender.name, runner.step))
            if contender.torch is not None and torch is not None:
                name = f"torch-{contender.torch}"
                entry.versus = name
                torch_entry = EmbeddingEntry(name, f"torch.optim.{contender.torch} (sparse COO gradient)",
                                             bytes_per_step=entry.bytes_per_step)
                result.entries[name] = torch_entry
                torch_table = initial.copy()
                torch_runner = _TorchStep(torch, contender.torch, torch_table, gradients)
                torch_runner.step()
                torch_runner.step()
                torch_entry.deviation = _check(torch_table, expected, initial, rows, exact=False)
                if not torch_entry.deviation <= TOLERANCE[dtype]:
                    torch_entry.status = "mismatch"
                    torch_entry.reason = f"deviates from lrcore.reference by {torch_entry.deviation:.3g} of the update"
                else:
                    group.append(Timed(name, torch_runner.step))
            del expected
            phase(f"timing {contender.name}")
            for name, samples in (measure_interleaved(group, budget) if group else {}).items():
                result.entries[name].seconds, result.entries[name].spread = samples.median, samples.spread
            del group, runner, table
            gc.collect()
    finally:
        set_num_threads(previous_threads)
        if torch is not None:
            torch.set_num_threads(previous_torch_threads)
    return result


def _reference_arguments(contender: _Contender) -> Dict[str, float]:
    return {"lr": 1e-3} if contender.name == "lrcore-SparseAdam" else {"lr": 1e-2}


def print_embedding(result: EmbeddingResult, out: TextIO, single_thread: Optional[EmbeddingResult] = None) -> None:
    """The embedding section: time per step, GB/s over the rows touched against the roof, speedups."""
    roof = result.roof_gigabytes_per_second
    roof_text = f"; roof {roof:.1f} GB/s" if roof else ""
    print(f"\nEmbedding table: {ROWS} x {WIDTH} {result.dtype}, {INDICES} Zipf({ZIPF_EXPONENT}) indices per step "
          f"(~{result.distinct_rows:.0f} distinct rows), {result.threads} thread{'s' if result.threads > 1 else ''}"
          f"{roof_text}; GB/s over the bytes of the rows touched", file=out)
    if result.status != "ok":
        print(f"  FAILED: {result.reason}", file=out)
    for name, entry in result.entries.items():
        if entry.status != "ok":
            print(f"  {entry.title:<44} {entry.status.upper()}: {entry.reason}", file=out)
            continue
        rate = entry.gigabytes_per_second
        cells = [f"{format_seconds(entry.seconds)} {format_spread(entry.spread)}".strip(),
                 f"{rate:.1f} GB/s" if rate else "", f"{rate / roof:.0%} of roof" if rate and roof else ""]
        notes = []
        speedup = result.speedup(name)
        if speedup is not None:
            notes.append(f"{speedup:.1f}x faster than {entry.versus}")
        if single_thread is not None and name in single_thread.entries:
            before = single_thread.entries[name].seconds
            if before and entry.seconds:
                notes.append(f"{before / entry.seconds:.2f}x its 1-thread speed")
        print(f"  {entry.title:<44} {cells[0]:>16} {cells[1]:>11} {cells[2]:>12}   {'; '.join(notes)}", file=out)
    out.flush()


def embedding_json(result: EmbeddingResult) -> Dict[str, Any]:
    return {
        "dtype": result.dtype, "threads": result.threads, "rows": ROWS, "width": WIDTH, "indices": INDICES,
        "zipf_exponent": ZIPF_EXPONENT, "distinct_rows": result.distinct_rows,
        "roof_gigabytes_per_second": result.roof_gigabytes_per_second, "status": result.status,
        "reason": result.reason,
        "entries": {name: {"title": e.title, "status": e.status, "reason": e.reason, "deviation": e.deviation,
                           "seconds": e.seconds, "spread": e.spread, "bytes_per_step": e.bytes_per_step,
                           "gigabytes_per_second": e.gigabytes_per_second, "versus": e.versus,
                           "speedup": result.speedup(name)}
                    for name, e in result.entries.items()},
    }
