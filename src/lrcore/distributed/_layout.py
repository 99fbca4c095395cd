"""Where every element lives when the parameters are sharded over processes (pure arithmetic, no MPI).

The parameters of one dtype are laid end to end, in the optimizer's order
(groups flattened), as one flat vector of ``total`` elements. Rank ``r`` of
``world_size`` owns the contiguous slice ``[bounds[r], bounds[r + 1])`` with
``bounds[r] = r * total // world_size``: shards differ by at most one
element, and a tensor may be split between neighbouring ranks. A tensor's
*piece* on a rank is its part of that slice (possibly empty).

The global norm is a sum of per-chunk partials (each tensor cut from its start
into 64 KiB chunks, the chunks added in order; see lrcore/gradients.hpp). A
chunk belongs to the rank holding its first element; when it runs past that
rank's shard, the following ranks send it the rest (never more than one chunk
per rank and dtype) so that the owner computes the chunk from exactly the
elements a single process would. :class:`NormPlan` says who sends what.
"""

from __future__ import annotations

import bisect
from typing import Dict, List, NamedTuple, Sequence, Tuple

import numpy as np

__all__ = ["CHUNK_BYTES", "Layout", "NormPlan", "Piece"]

#: The chunk of the native whole-gradient passes (cpp/src/chunking.hpp, chunk_bytes).
CHUNK_BYTES = 64 * 1024

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Piece(NamedTuple):
    """Tensor ``tensor``'s elements ``[begin, end)`` (of its flattened form) on one rank,
    which are elements ``[flat_begin, flat_begin + end - begin)`` of its dtype's flat vector."""

    tensor: int
    begin: int
    end: int
    flat_begin: int


class Layout:
    """The flat vectors (one per dtype) of a list of tensors, and their shards over ``world_size`` ranks.

    Args:
        shapes: each tensor's shape, in the optimizer's order.
        dtypes: each tensor's dtype (float32 or float64).
        world_size: the number of ranks (>= 1).
    """

    def __init__(self, shapes: Sequence[Tuple[int, ...]], dtypes: Sequence[np.dtype], world_size: int) -> None:
        if world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {world_size}")
        self.world_size = world_size
        self.shapes = [tuple(int(n) for n in shape) for shape in shapes]
        self.dtypes = [np.dtype(d) for d in dtypes]
        self.sizes = [int(np.prod(shape, dtype=np.int64)) for shape in self.shapes]
        #: Each tensor's first element in its dtype's flat vector.
        self.offsets: List[int] = []
        self.totals: Dict[np.dtype, int] = {d: 0 for d in DTYPES}
        for size, dtype in zip(self.sizes, self.dtypes):
            if dtype not in self.totals:
                raise TypeError(f"only float32 and float64 parameters can be sharded, got {dtype}")
            self.offsets.append(self.totals[dtype])
            self.totals[dtype] += size
        #: Per dtype, the shard boundaries: rank r owns [bounds[r], bounds[r + 1]).
        self.bounds: Dict[np.dtype, List[int]] = {
            d: [r * total // world_size for r in range(world_size + 1)] for d, total in self.totals.items()}

    @property
    def dtypes_present(self) -> List[np.dtype]:
        """The dtypes that have at least one element, float32 first."""
        return [d for d in DTYPES if self.totals[d] > 0]

    def shard(self, rank: int, dtype: np.dtype) -> Tuple[int, int]:
        """Rank ``rank``'s slice [start, stop) of the flat vector of ``dtype``."""
        bounds = self.bounds[np.dtype(dtype)]
        return bounds[rank], bounds[rank + 1]

    def counts(self, dtype: np.dtype) -> List[int]:
        """Every rank's shard length in ``dtype``."""
        bounds = self.bounds[np.dtype(dtype)]
        return [bounds[r + 1] - bounds[r] for r in range(self.world_size)]

    def pieces(self, rank: int) -> List[Piece]:
        """Every tensor's piece on ``rank``, in tensor order (empty pieces included, placed
        where the tensor would be, so every rank has one piece per tensor)."""
        pieces = []
        for k, (size, dtype, offset) in enumerate(zip(self.sizes, self.dtypes, self.offsets)):
            start, stop = self.shard(rank, dtype)
            begin = min(max(start - offset, 0), size)
            end = max(min(stop - offset, size), begin)
            pieces.append(Piece(k, begin, end, offset + begin))
        return pieces

    def owner(self, dtype: np.dtype, position: int) -> int:
        """The rank whose shard holds element ``position`` of the flat vector of ``dtype``."""
        return bisect.bisect_right(self.bounds[np.dtype(dtype)], position) - 1

    def chunk_elements(self, dtype: np.dtype) -> int:
        return CHUNK_BYTES // np.dtype(dtype).itemsize

    def norm_plan(self, active: Sequence[bool]) -> "NormPlan":
        """How the ranks compute the global norm of the gradients of the ``active`` tensors."""
        return NormPlan(self, active)


class _DtypePlan(NamedTuple):
    # Per rank: slices [a, b) of the rank's shard (shard coordinates) whose native chunks are
    # exactly its owned whole chunks, in order, with the index (in that order) where the
    # assembled chunk goes, or -1.
    runs: List[List[Tuple[int, int]]]
    assembled_at: List[int]
    # Per rank: the owned chunk that runs past the shard, as (own part length), or 0.
    own_part: List[int]
    # send[r] = (destination, length): the prefix of rank r's shard that belongs to a chunk of
    # an earlier rank; (-1, 0) when none.
    send: List[Tuple[int, int]]
    # receive[r] = [(source, length)] in rank order: what rank r appends to its own part.
    receive: List[List[Tuple[int, int]]]
    # Per rank: how many partials it contributes (its owned chunks of active tensors).
    partials: List[int]


class NormPlan:
    """For each dtype and rank: which owned chunks a rank computes from its shard, which
    chunk it assembles from its own tail and its successors' heads, and what it sends.

    A rank's part of the norm, given its shard of each dtype's averaged gradient:
    it sends :meth:`head` to its destination, receives :meth:`receive_counts`
    elements from each rank, computes ``norm_partials(sources(...))`` and
    contributes those partials (:meth:`partial_counts` per rank, float32's then
    float64's); :meth:`split` puts everyone's partials back in chunk order.
    """

    def __init__(self, layout: Layout, active: Sequence[bool]) -> None:
        self.layout = layout
        self.by_dtype: Dict[np.dtype, _DtypePlan] = {d: self._plan(d, active) for d in layout.dtypes_present}

    def head(self, dtype: np.dtype, rank: int, shard: np.ndarray) -> Tuple[int, np.ndarray]:
        """(destination, the prefix of ``shard`` it needs); (-1, empty) when there is none."""
        destination, length = self.by_dtype[np.dtype(dtype)].send[rank]
        return destination, shard[:length]

    def receive_counts(self, dtype: np.dtype, rank: int) -> List[int]:
        """How many elements ``rank`` receives from each rank (in rank order they extend its tail)."""
        counts = [0] * self.layout.world_size
        for source, length in self.by_dtype[np.dtype(dtype)].receive[rank]:
            counts[source] = length
        return counts

    def sources(self, dtype: np.dtype, rank: int, shard: np.ndarray, received: np.ndarray) -> List[np.ndarray]:
        """The arrays whose native chunks are exactly ``rank``'s owned chunks of ``dtype``, in order:
        slices of ``shard`` and, last, the chunk assembled from its tail and ``received``."""
        plan = self.by_dtype[np.dtype(dtype)]
        arrays = [shard[begin:end] for begin, end in plan.runs[rank]]
        own = plan.own_part[rank]
        if own:
            arrays.append(np.concatenate([shard[len(shard) - own:], received]))
        return arrays

    def partial_counts(self) -> List[int]:
        """How many partials each rank contributes (all dtypes)."""
        return [sum(plan.partials[r] for plan in self.by_dtype.values()) for r in range(self.layout.world_size)]

    def split(self, everyone: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Every rank's partials (rank after rank, each float32's then float64's) as the float32 and
        the float64 partials in chunk order, for ``norm_from_partials``."""
        parts: Dict[np.dtype, List[np.ndarray]] = {d: [] for d in DTYPES}
        position = 0
        for r in range(self.layout.world_size):
            for dtype, plan in self.by_dtype.items():
                parts[dtype].append(everyone[position:position + plan.partials[r]])
                position += plan.partials[r]
        if position != len(everyone):
            raise ValueError(f"expected {position} partials, got {len(everyone)}")
        empty = np.zeros(0, np.float64)
        f32, f64 = (np.concatenate(parts[d]) if parts[d] else empty for d in DTYPES)
        return f32, f64

    def _plan(self, dtype: np.dtype, active: Sequence[bool]) -> _DtypePlan:
        layout = self.layout
        world = layout.world_size
        chunk = layout.chunk_elements(dtype)
        runs: List[List[Tuple[int, int]]] = [[] for _ in range(world)]
        assembled_at = [-1] * world
        own_part = [0] * world
        send = [(-1, 0)] * world
        receive: List[List[Tuple[int, int]]] = [[] for _ in range(world)]
        partials = [0] * world
        for k, (size, tensor_dtype, offset) in enumerate(zip(layout.sizes, layout.dtypes, layout.offsets)):
            if tensor_dtype != dtype or not active[k] or size == 0:
                continue
            for rank in range(world):
                start, stop = layout.shard(rank, dtype)
                begin = max(start, offset)
                end = min(stop, offset + size)
                if begin >= end:
                    continue
                local_begin = begin - offset  # in tensor coordinates
                # A head that belongs to a chunk starting on an earlier rank.
                first_owned = -(-local_begin // chunk) * chunk
                if local_begin % chunk != 0:
                    head_end = min(first_owned, end - offset)
                    owner = layout.owner(dtype, offset + (local_begin // chunk) * chunk)
                    send[rank] = (owner, head_end - local_begin)
                    receive[owner].append((rank, head_end - local_begin))
                if first_owned >= end - offset:
                    continue
                # Owned chunks: those starting in [first_owned, end); the last may run past the shard.
                last_start = ((end - offset - 1) // chunk) * chunk
                last_end = min(last_start + chunk, size)
                whole_end = last_end if last_end <= end - offset else last_start
                if whole_end > first_owned:
                    runs[rank].append((offset + first_owned - start, offset + whole_end - start))
                    partials[rank] += -(-(whole_end - first_owned) // chunk)
                if whole_end != last_end:
                    assembled_at[rank] = partials[rank]
                    own_part[rank] = end - offset - last_start
                    partials[rank] += 1
        return _DtypePlan(runs, assembled_at, own_part, send, receive, partials)
