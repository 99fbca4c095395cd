"""lrcore's update rules as drop-in replacements for ``torch.optim`` on CPU tensors.

One class per lrcore rule, with torch.optim's name, constructor and
semantics (``lrcore.torch.SGD``, ``Adagrad``, ``RMSprop``, ``Adam``,
``AdamW``, and every rule added to :data:`lrcore._rules.RULES` later: the
classes are made from the rule descriptions at import). Each is a real
:class:`torch.optim.Optimizer`: it takes ``model.parameters()``,
``model.named_parameters()`` or parameter groups, reads ``p.grad``, and
inherits ``zero_grad``, the hooks, ``state_dict``/``load_state_dict`` (in
torch's layout) and everything ``torch.optim.lr_scheduler`` needs. A step
updates the tensors' own storage in place, in one native call::

    import lrcore.torch
    optimizer = lrcore.torch.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=1000)
    for x, y in batches:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
        scheduler.step()

The schedule-free classes (``ScheduleFreeAdamW``, ``ScheduleFreeSGD``) are
drop-ins for the ``schedulefree`` package's, with its ``train()`` and
``eval()`` and its per-group state in the group dicts.

Supported: float32, float64, bfloat16 and float16 dense, contiguous CPU
tensors (16-bit ones with float32 math, optionally float32 master weights or
stochastic rounding: docs/torch.md, "bf16 / fp16 models"); a rule that
takes row-sparse gradients only is refused at construction. See
docs/torch.md for the state_dict layout, resuming with ``torch.save`` and
torch's OpenMP threads.
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401 - fails here, with the message below, when torch is absent
except ImportError as _error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "lrcore.torch needs PyTorch, which is not installed: pip install 'lrcore[torch]' "
        "(or install torch yourself); lrcore's numpy optimizers (lrcore.Adam, ...) work without it"
    ) from _error

from typing import Any, Dict, List, Type

from .._rules import RULES
from ._optimizer import SUPPORTED_DTYPES, Optimizer, optimizer_class

#: One class per rule of lrcore._rules.RULES, by class name.
_CLASSES: Dict[str, Type[Optimizer]] = {rule.class_name: optimizer_class(rule) for rule in RULES.values()}
globals().update(_CLASSES)

__all__: List[str] = ["Optimizer", "SUPPORTED_DTYPES", *_CLASSES]


def __getattr__(name: str) -> Any:
    # The classes are in the module's namespace already; this only tells a type
    # checker that lrcore.torch.<RuleClass> exists (they are made at import).
    raise AttributeError(f"module 'lrcore.torch' has no attribute {name!r}")
