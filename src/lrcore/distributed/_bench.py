"""``mpiexec -n 2 python -m lrcore bench-distributed``: the sharded step's time, traffic and memory.

For each size, every rank first checks its result: a few sharded steps must give
bitwise the parameters of one process stepping the averaged gradients (and the
same on every rank); only then is the step timed. Reported per size: the
median step time (each step's time is the slowest rank's, between barriers),
the bytes this rank handed to MPI per step against the ZeRO-1 minimum
(``2 (W - 1) / W`` times the parameter bytes: a reduce-scatter and an
all-gather), and the optimizer state bytes of one rank against the unsharded
optimizer's. Run it with ``-n 1`` and ``-n 2`` to compare.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .. import _core
from ..bench._plan import format_bytes
from ..optim import Optimizer

DESCRIPTION = __doc__
RULES = ("sgd", "adagrad", "rmsprop", "adam", "adamw")


def _size(text: str) -> int:
    text = text.strip().lower()
    if text.startswith("2^"):
        return 1 << int(text[2:])
    scale = {"k": 1 << 10, "m": 1 << 20}.get(text[-1:], 1)
    return int(text[:-1] if scale > 1 else text) * scale


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--rule", choices=RULES, default="adam")
    parser.add_argument("--sizes", default="2^22,2^24", metavar="LIST",
                        help="total parameter elements, comma-separated (2^22, 4M, 65536); default 2^22,2^24")
    parser.add_argument("--tensors", type=int, default=8, help="split each size into this many tensors (default 8)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per size (default 10)")
    parser.add_argument("--clip", type=float, default=None, metavar="MAX_NORM",
                        help="global-norm clipping (max_grad_norm); default off")
    parser.add_argument("--threads", type=int, default=None,
                        help="lrcore threads per process (default: the CPUs divided by the processes on this node)")


def _classes() -> Dict[str, type]:
    from .. import optim

    return {"sgd": optim.SGD, "adagrad": optim.Adagrad, "rmsprop": optim.RMSprop, "adam": optim.Adam,
            "adamw": optim.AdamW}


def _config(rule: str) -> Dict[str, Any]:
    return {"lr": 0.01, "momentum": 0.9} if rule == "sgd" else {"lr": 0.01}


def _shapes(total: int, tensors: int) -> List[int]:
    # Uneven sizes, so that shard boundaries fall inside tensors.
    weights = np.arange(1, tensors + 1, dtype=np.float64)
    sizes = np.floor(weights / weights.sum() * total).astype(np.int64)
    sizes[-1] += total - int(sizes.sum())
    return [int(n) for n in sizes]


def _gradients(sizes: Sequence[int], dtype: Any, step: int, rank: int) -> List[np.ndarray]:
    rng = np.random.default_rng(1000 * step + rank)
    return [rng.standard_normal(n, dtype=np.float64).astype(dtype) for n in sizes]


def _state_bytes(optimizer: Optimizer) -> int:
    return sum(a.nbytes for state in optimizer._states for arrays in state.values() for a in arrays if a is not None)


def _verify(comm: Any, optimizer_class: Any, config: Dict[str, Any], sizes: Sequence[int], dtype: Any,
            clip: Optional[float]) -> Optional[str]:
    """None when 3 sharded steps equal one process's bitwise on every rank, else what differs."""
    from ._sharded import ShardedOptimizer, flat_parameters

    world, rank = comm.Get_size(), comm.Get_rank()
    rng = np.random.default_rng(7)
    params = flat_parameters([rng.standard_normal(n).astype(dtype) for n in sizes])
    reference = [p.copy() for p in params]
    sharded = ShardedOptimizer(optimizer_class, params, comm, max_grad_norm=clip, **config)
    single = optimizer_class(reference, max_grad_norm=clip, **config)
    for step in range(3):
        sharded.step(_gradients(sizes, dtype, step, rank))
        per_rank = [_gradients(sizes, dtype, step, r) for r in range(world)]
        average = []
        for k in range(len(sizes)):
            total = per_rank[0][k]
            for r in range(1, world):
                total = total + per_rank[r][k]
            average.append(total / np.dtype(dtype).type(world) if world > 1 else total)
        single.step(average)
    problem = None
    if not all(np.array_equal(a, b) for a, b in zip(params, reference)):
        problem = f"rank {rank}: the sharded parameters differ from one process's"
    elif sharded.last_grad_norm != single.last_grad_norm:
        problem = f"rank {rank}: the global norm differs from one process's"
    problems = comm.allgather(problem)
    digests = comm.allgather(hashlib.sha256(b"".join(p.tobytes() for p in params)).hexdigest())
    if any(problems):
        return "; ".join(p for p in problems if p)
    if len(set(digests)) != 1:
        return "the ranks' parameters differ"
    return None


def run(args: argparse.Namespace) -> int:
    from ._sharded import ShardedOptimizer, _mpi, flat_parameters

    MPI = _mpi()
    comm = MPI.COMM_WORLD
    world, rank = comm.Get_size(), comm.Get_rank()
    local = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
    threads = args.threads if args.threads else max(1, (os.cpu_count() or 1) // local)
    _core.set_num_threads(threads)
    optimizer_class = _classes()[args.rule]
    config = _config(args.rule)
    dtype = np.dtype(args.dtype)
    say = print if rank == 0 else (lambda *a, **k: None)
    say(f"lrcore bench-distributed: {args.rule} {dtype}, {world} process(es), {threads} thread(s) each, "
        f"clipping {'off' if args.clip is None else args.clip}, kernels {_core.isa()}")
    say(f"{'elements':>10} {'step':>10} {'sent/step':>11} {'ZeRO-1 min':>11} {'ratio':>6} "
        f"{'state/rank':>11} {'unsharded':>10} {'ratio':>6}")
    status = 0
    for text in args.sizes.split(","):
        total = _size(text)
        sizes = _shapes(total, max(1, min(args.tensors, total)))
        problem = _verify(comm, optimizer_class, config, sizes, dtype, args.clip)
        if problem is not None:
            say(f"{total:>10} verification FAILED: {problem}")
            status = 1
            continue
        rng = np.random.default_rng(3)
        params = flat_parameters([rng.standard_normal(n).astype(dtype) for n in sizes])
        sharded = ShardedOptimizer(optimizer_class, params, comm, max_grad_norm=args.clip, **config)
        grads = flat_parameters(_gradients(sizes, dtype, 0, rank))
        sharded.step(grads)  # creates the state
        times = []
        for _ in range(args.steps):
            comm.Barrier()
            start = time.perf_counter()
            sharded.step(grads)
            elapsed = time.perf_counter() - start
            times.append(comm.allreduce(elapsed, op=MPI.MAX))
        param_bytes = total * dtype.itemsize
        minimum = 2 * (world - 1) * param_bytes / world
        sent = comm.allreduce(sharded.last_step_bytes, op=MPI.MAX)
        state = comm.allreduce(sharded.state_bytes(), op=MPI.MAX)
        # The unsharded optimizer's state: the same rule over the whole parameters (counted, not kept).
        unsharded = state * world if world == 1 else _unsharded_state(optimizer_class, config, sizes, dtype)
        median = float(np.median(times))
        ratio = f"{sent / minimum:6.3f}" if minimum else "   n/a"
        say(f"{total:>10} {median * 1e3:8.2f}ms {format_bytes(sent):>11} {format_bytes(minimum):>11} {ratio} "
            f"{format_bytes(state):>11} {format_bytes(unsharded):>10} {state / unsharded:6.3f}")
        del sharded, params, grads
    return status


def _unsharded_state(optimizer_class: Any, config: Dict[str, Any], sizes: Sequence[int], dtype: Any) -> int:
    probe = [np.zeros(1, dtype) for _ in sizes]
    optimizer = optimizer_class(probe, **config)
    optimizer.step([np.ones(1, dtype) for _ in sizes])
    per_element = _state_bytes(optimizer) // len(sizes)
    return per_element * int(sum(sizes))
