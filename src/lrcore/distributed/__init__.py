"""Scale-out over MPI: ZeRO stage 1, the optimizer state sharded over processes.

:class:`ShardedOptimizer` wraps any element-wise lrcore optimizer: every
process keeps all the parameters, the gradients are averaged with a
reduce-scatter, each process steps (and keeps the state of) only its shard,
and an all-gather brings every process the updated parameters. :func:`save`
and :func:`load` write and read sharded checkpoints, loadable at any world
size. Needs ``mpi4py`` and an MPI library (``pip install 'lrcore[mpi]'``);
this module itself imports without them. See ``docs/distributed.md``.
"""

from ._checkpoint import MANIFEST, load, save
from ._sharded import ShardedOptimizer, flat_parameters

__all__ = ["MANIFEST", "ShardedOptimizer", "flat_parameters", "load", "save"]
