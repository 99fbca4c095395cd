"""The optimizer classes, one per rule description (torch.optim's names, arguments and defaults).

Each class's constructor, docstring and state come from its description in
:mod:`lrcore._rules`; nothing about a rule is written here but its name.
"""

from __future__ import annotations

from .._rules import RULES
from ._optimizer import Optimizer

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "RAdam", "Adamax", "Lion", "Adadelta", "Rprop", "ASGD",
           "Adafactor", "ScheduleFreeAdamW", "ScheduleFreeSGD", "SparseAdam", "RowWiseAdagrad"]


class SGD(Optimizer, rule=RULES["sgd"]):
    pass


class Adagrad(Optimizer, rule=RULES["adagrad"]):
    pass


class RMSprop(Optimizer, rule=RULES["rmsprop"]):
    pass


class Adam(Optimizer, rule=RULES["adam"]):
    pass


class AdamW(Optimizer, rule=RULES["adamw"]):
    pass


class Adafactor(Optimizer, rule=RULES["adafactor"]):
    pass


class NAdam(Optimizer, rule=RULES["nadam"]):
    pass


class RAdam(Optimizer, rule=RULES["radam"]):
    pass


class Adamax(Optimizer, rule=RULES["adamax"]):
    pass


class Lion(Optimizer, rule=RULES["lion"]):
    pass


class Adadelta(Optimizer, rule=RULES["adadelta"]):
    pass


class Rprop(Optimizer, rule=RULES["rprop"]):
    pass


class ASGD(Optimizer, rule=RULES["asgd"]):
    pass


class ScheduleFreeAdamW(Optimizer, rule=RULES["schedule_free_adamw"]):
    pass


class ScheduleFreeSGD(Optimizer, rule=RULES["schedule_free_sgd"]):
    pass


class SparseAdam(Optimizer, rule=RULES["sparse_adam"]):
    pass


class RowWiseAdagrad(Optimizer, rule=RULES["rowwise_adagrad"]):
    pass
