"""Optimizer classes with torch.optim's names, arguments and semantics."""

from ._classes import SGD, Adagrad, Adam, Adamax, AdamW, Lion, NAdam, RAdam, RMSprop, ScheduleFreeAdamW, ScheduleFreeSGD
from ._classes import RowWiseAdagrad, SparseAdam
from ._optimizer import Optimizer, OptimizerSnapshot

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "OptimizerSnapshot", "RMSprop",
           "NAdam", "RAdam", "Adamax", "Lion", "ScheduleFreeAdamW", "ScheduleFreeSGD",
           "SparseAdam", "RowWiseAdagrad"]
