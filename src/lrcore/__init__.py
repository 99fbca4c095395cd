"""lrcore: fast CPU optimizer steps on numpy arrays, and learning-rate schedules.

The update rules (SGD with momentum and Nesterov, AdaGrad, RMSprop, Adam,
AdamW, Adadelta, Rprop, ASGD) run in compiled SIMD kernels that update numpy arrays in place. The
optimizer classes follow torch.optim's names, arguments and semantics; every
numeric hyperparameter also accepts a schedule (a function of the step).

Example:
    >>> import numpy as np, lrcore
    >>> w = np.zeros(4, dtype=np.float32)
    >>> opt = lrcore.Adam([w], lr=0.1)
    >>> opt.step([np.ones(4, dtype=np.float32)])  # True: applied
    True
    >>> w.round(4)
    array([-0.1, -0.1, -0.1, -0.1], dtype=float32)
"""

from __future__ import annotations

try:
    from . import _core
except ImportError as _error:  # pragma: no cover - depends on the installation
    raise ImportError(
        "lrcore's compiled module (lrcore._core) could not be imported. lrcore must be installed "
        "with its C++ extension built, e.g. `pip install .` from a source checkout; running from "
        f"the source tree without building does not work. Original error: {_error}"
    ) from _error

import os as _os

if _os.environ.get("LRCORE_ISA"):
    # Check a forced kernel variant now, so a typo fails at import rather than at the first step.
    _core.isa()

from ._runtime import (
    available_isas,
    compiled_isas,
    get_flush_denormals,
    get_num_threads,
    isa,
    set_flush_denormals,
    set_isa,
    set_num_threads,
)
from . import checkpoint, functional, gradients, reference, schedules
from .checkpoint import CheckpointError, load, save
from .gradients import all_finite, clip_grad_norm, clip_grad_value, global_norm
from ._factory import available_optimizers, create_optimizer
from ._build_info import get_cmake_dir, get_include, get_library, get_library_dir
from .lr_finder import LRFinderResult, find_lr
from . import plotting
from .plotting import plot_schedule

# Older code calls lrcore.schedules.plot. The alias is set here, by the package
# that imports both, because the schedules package must not import plotting
# (plotting is a consumer of schedules, never a dependency of them).
setattr(schedules, "plot", plot_schedule)  # an alias the schedules package does not declare
from .optim import (ASGD, SGD, Adadelta, Adafactor, Adagrad, Adam, Adamax, AdamW, Lion, NAdam, Optimizer, RAdam,
                    RMSprop, Rprop, ScheduleFreeAdamW, ScheduleFreeSGD)
from .optim import RowWiseAdagrad, SparseAdam
from ._core import SparseRows

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _distribution_version

try:
    __version__ = _distribution_version("lrcore")  # written once, in CMakeLists.txt's project()
except _PackageNotFoundError:  # pragma: no cover - not installed as a distribution
    __version__ = "unknown"

__all__ = [
    "SGD",
    "Adagrad",
    "CheckpointError",
    "LRFinderResult",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "all_finite",
    "available_optimizers",
    "available_isas",
    "checkpoint",
    "clip_grad_norm",
    "clip_grad_value",
    "compiled_isas",
    "create_optimizer",
    "find_lr",
    "functional",
    "get_cmake_dir",
    "get_flush_denormals",
    "get_include",
    "get_library",
    "get_library_dir",
    "global_norm",
    "gradients",
    "get_num_threads",
    "isa",
    "load",
    "plot_schedule",
    "plotting",
    "reference",
    "save",
    "schedules",
    "set_flush_denormals",
    "set_isa",
    "set_num_threads",
    "__version__",
    "Adafactor",
    "NAdam",
    "RAdam",
    "Adamax",
    "Lion",
    "Adadelta",
    "Rprop",
    "ASGD",
    "ScheduleFreeAdamW",
    "ScheduleFreeSGD",
    "SparseAdam",
    "RowWiseAdagrad",
    "SparseRows",
]
