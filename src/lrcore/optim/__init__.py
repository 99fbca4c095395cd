"""Optimizer classes with torch.optim's names, arguments and semantics."""

from ._classes import (ASGD, SGD, Adadelta, Adafactor, Adagrad, Adam, Adamax, AdamW, Lion, NAdam, RAdam, RMSprop,
                       Rprop, ScheduleFreeAdamW, ScheduleFreeSGD)
from ._classes import RowWiseAdagrad, SparseAdam
from ._optimizer import Optimizer, OptimizerSnapshot

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "OptimizerSnapshot", "RMSprop",
           "NAdam", "RAdam", "Adamax", "Lion", "Adadelta", "Rprop", "ASGD", "Adafactor", "ScheduleFreeAdamW",
           "ScheduleFreeSGD", "SparseAdam", "RowWiseAdagrad"]
