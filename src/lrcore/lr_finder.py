"""The learning-rate range test: find a good learning rate in one short run.

:func:`find_lr` trains for a few steps while raising the learning rate from
very small to very large, records the loss after each step, stops once the
loss diverges, and suggests the learning rate where the (smoothed) loss falls
fastest. Parameters and optimizer state are restored bitwise afterwards, so
the search costs the caller nothing but time.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._arguments import in_range, integer, positive
from .plotting import plot_lr_finder

__all__ = ["LRFinderResult", "find_lr", "smooth_losses", "steepest_descent_index"]

# A sequence of numbers: a list, or a 1-d array as the range test records them.
FloatSequence = Union[Sequence[float], np.ndarray]

LossAndGrads = Callable[[], Tuple[float, Sequence[Optional[np.ndarray]]]]


def smooth_losses(losses: FloatSequence, smoothing: float) -> np.ndarray:
    """Exponential moving average of ``losses`` with bias correction.

    .. math:: a_i = \\beta a_{i-1} + (1 - \\beta) \\ell_i,\\quad a_{-1} = 0,\\qquad
              \\hat\\ell_i = a_i / (1 - \\beta^{i+1})

    The bias correction makes the first values an average of the losses seen so
    far rather than a value pulled towards zero (as in Adam's moment estimates).

    Args:
        losses: The raw losses, in order.
        smoothing: :math:`\\beta`, in [0, 1); 0 returns the losses unchanged.

    Returns:
        The smoothed losses, a float64 array as long as ``losses``.

    Examples:
        >>> smooth_losses([1.0, 3.0], 0.5).tolist()
        [1.0, 2.333333333333333]
    """
    beta = in_range("smoothing", smoothing, 0.0, 1.0, high_open=True)
    smoothed = np.empty(len(losses), dtype=np.float64)
    average = 0.0
    for i, loss in enumerate(losses):
        average = beta * average + (1.0 - beta) * float(loss)
        smoothed[i] = average / (1.0 - beta ** (i + 1))
    return smoothed


def steepest_descent_index(lrs: FloatSequence, smoothed_losses: FloatSequence, *, skip_start: int = 10,
                           skip_end: int = 5) -> Optional[int]:
    """Index of the learning rate where the smoothed loss falls fastest against ``log(lr)``.

    The slope :math:`d\\hat\\ell / d\\log(\\mathrm{lr})` is estimated with
    ``numpy.gradient`` (central differences, one-sided at the ends) over the
    window ``[skip_start, min(n - skip_end, m + 1))``, where ``m`` is the index
    of the lowest smoothed loss; the suggestion is the point of the most
    negative slope. Skipping the first points ignores the start, where the
    smoothed curve is still settling; ending at the minimum ignores the
    divergence and anything after it (a loss that blows up and then falls
    back, e.g. to the loss of a dead network, has steep but meaningless
    descents); skipping the last points ignores the edge of the sweep. When
    the window holds fewer than 3 points it becomes ``[0, m + 1)``.

    Args:
        lrs: The learning rates tried (positive, increasing).
        smoothed_losses: The smoothed loss after each step.
        skip_start: Points ignored at the start (integer >= 0).
        skip_end: Points ignored at the end (integer >= 0).

    Returns:
        The index into ``lrs``, or ``None`` when there are fewer than 2 finite
        points or the loss never decreases in the window.
    """
    skip_start = integer("skip_start", skip_start, 0)
    skip_end = integer("skip_end", skip_end, 0)
    lrs = np.asarray(lrs, dtype=np.float64)
    losses = np.asarray(smoothed_losses, dtype=np.float64)
    if lrs.shape != losses.shape or lrs.ndim != 1:
        raise ValueError(f"lrs and smoothed_losses must be 1-d and equally long, got {lrs.shape} and {losses.shape}")
    # Only the points before the first non-finite loss count.
    count = _finite_prefix(losses, lrs)
    if count < 2:
        return None
    lowest = int(np.argmin(losses[:count]))
    start, stop = skip_start, min(count - skip_end, lowest + 1)
    if stop - start < 3:
        start, stop = 0, lowest + 1
    if stop - start < 2:
        return None
    log_lrs = np.log(lrs[start:stop])
    slopes = np.gradient(losses[start:stop], log_lrs)
    best = int(np.argmin(slopes))
    if not slopes[best] < 0.0:
        return None
    return start + best


def _finite_prefix(losses: np.ndarray, lrs: np.ndarray) -> int:
    bad = np.flatnonzero(~(np.isfinite(losses) & (lrs > 0)))
    return int(bad[0]) if bad.size else int(losses.size)


class LRFinderResult:
    """What a learning-rate range test found.

    Attributes:
        lrs: The learning rates tried, one per optimizer step taken (float64).
        losses: The raw loss measured after each step, at the parameters that
            step produced (so ``losses[i]`` is the effect of ``lrs[i]``).
        smoothed_losses: ``losses`` smoothed by :func:`smooth_losses`.
        initial_loss: The loss before the first step.
        suggested_lr: The learning rate of steepest descent of the smoothed
            curve (see :func:`steepest_descent_index`), or ``None`` when the
            loss never decreased.
        suggested_index: Its index into ``lrs``, or ``None``.
        diverged: Whether the test stopped because the loss diverged (or
            became non-finite) rather than by reaching ``end_lr``.
        num_steps: The number of steps requested (``len(lrs)`` is smaller
            when the test stopped early).
        smoothing, diverge_threshold, skip_start, skip_end, mode: The settings used.
    """

    def __init__(self, lrs: FloatSequence, losses: FloatSequence, initial_loss: float, *, num_steps: int,
                 mode: str, smoothing: float, diverge_threshold: Optional[float], diverged: bool,
                 skip_start: int, skip_end: int) -> None:
        self.lrs: np.ndarray = np.asarray(lrs, dtype=np.float64)
        self.losses: np.ndarray = np.asarray(losses, dtype=np.float64)
        self.smoothed_losses: np.ndarray = smooth_losses(self.losses, smoothing)
        self.initial_loss: float = float(initial_loss)
        self.num_steps = num_steps
        self.mode = mode
        self.smoothing = smoothing
        self.diverge_threshold = diverge_threshold
        self.diverged = diverged
        self.skip_start = skip_start
        self.skip_end = skip_end
        self.suggested_index: Optional[int] = steepest_descent_index(
            self.lrs, self.smoothed_losses, skip_start=skip_start, skip_end=skip_end)
        self.suggested_lr: Optional[float] = (
            None if self.suggested_index is None else float(self.lrs[self.suggested_index]))

    def suggestion(self, *, skip_start: Optional[int] = None, skip_end: Optional[int] = None) -> Optional[float]:
        """The steepest-descent learning rate with other skips (default: those of the test)."""
        index = steepest_descent_index(
            self.lrs, self.smoothed_losses,
            skip_start=self.skip_start if skip_start is None else skip_start,
            skip_end=self.skip_end if skip_end is None else skip_end,
        )
        return None if index is None else float(self.lrs[index])

    @property
    def min_loss_lr(self) -> Optional[float]:
        """The learning rate at the lowest smoothed loss (a common alternative rule is a tenth of it)."""
        count = _finite_prefix(self.smoothed_losses, self.lrs)
        if count == 0:
            return None
        return float(self.lrs[int(np.argmin(self.smoothed_losses[:count]))])

    def plot(self, ax: Any = None, path: Any = None, *, show_raw: bool = True, skip_end: Optional[int] = None) -> Any:
        """Draws loss against learning rate (log axis) with the suggestion marked.

        Needs matplotlib (``pip install matplotlib``).

        Args:
            ax: A matplotlib Axes to draw into; a new figure when ``None``.
            path: Where to save the figure (any format matplotlib writes, by suffix).
            show_raw: Also draw the raw losses, faintly.
            skip_end: Points left out at the end, where the loss blows up and
                would squash the rest of the curve (default: ``skip_end`` of the test).

        Returns:
            The matplotlib Axes.
        """
        return plot_lr_finder(self.lrs, self.losses, self.smoothed_losses, suggested_index=self.suggested_index,
                              initial_loss=self.initial_loss, smoothing=self.smoothing, diverged=self.diverged,
                              skip_end=self.skip_end if skip_end is None else skip_end, show_raw=show_raw,
                              ax=ax, path=path)

    def __len__(self) -> int:
        return int(self.lrs.size)

    def __repr__(self) -> str:
        suggestion = "None" if self.suggested_lr is None else f"{self.suggested_lr:.3g}"
        return (f"LRFinderResult(steps={len(self)}/{self.num_steps}, lrs={self.lrs[0] if len(self) else 0:.3g}.."
                f"{self.lrs[-1] if len(self) else 0:.3g}, diverged={self.diverged}, suggested_lr={suggestion})")


def find_lr(optimizer: Any, loss_and_grads: LossAndGrads, *, start_lr: float = 1e-7, end_lr: float = 10.0,
            num_steps: int = 100, mode: str = "exp", smoothing: float = 0.95,
            diverge_threshold: Optional[float] = 4.0, skip_start: int = 10, skip_end: int = 5,
            also_restore: Sequence[np.ndarray] = ()) -> LRFinderResult:
    """Runs the learning-rate range test with ``optimizer`` and restores everything afterwards.

    Step ``i`` (``i = 0 .. num_steps - 1``) sets the learning rate of every
    parameter group to

    .. math:: \\mathrm{lr}_i = \\mathrm{start} \\cdot (\\mathrm{end}/\\mathrm{start})^{i/(n-1)}
              \\quad (\\text{mode="exp"}),\\qquad
              \\mathrm{lr}_i = \\mathrm{start} + (\\mathrm{end} - \\mathrm{start})\\, i/(n-1)
              \\quad (\\text{mode="linear"})

    calls ``optimizer.step(grads)`` with the gradients of the last call of
    ``loss_and_grads``, then calls it again: the loss it returns, measured at
    the parameters the step produced, is recorded against ``lr_i`` (the first
    call gives :attr:`LRFinderResult.initial_loss` and the first gradients).
    The losses are smoothed by :func:`smooth_losses`; the test stops early when

    .. math:: \\hat\\ell_i > \\hat\\ell_{best} + (\\tau - 1)\\,|\\hat\\ell_{best}|

    (that is :math:`\\hat\\ell_i > \\tau \\hat\\ell_{best}` for a positive best),
    with :math:`\\tau` = ``diverge_threshold`` and :math:`\\hat\\ell_{best}` the
    lowest smoothed loss so far, or when a loss is not finite (a step that an
    optimizer with ``skip_nonfinite=True`` skips for a non-finite gradient ends
    it the same way, its loss recorded as NaN). The suggested
    learning rate is the steepest descent of the smoothed curve against
    ``log(lr)`` (see :func:`steepest_descent_index`).

    Other hyperparameters that are schedules (momentum, betas, ...) are held
    at their value for the optimizer's next step, so only the learning rate
    varies. Afterwards the parameters are copied back bitwise, the optimizer's
    state (``state_dict()``: moment buffers, step counts, ``step_count``, the
    state of schedules) is loaded back, ``skipped_steps`` and
    ``last_hyperparameters`` are put back, and every parameter group gets its
    original hyperparameter objects back (the same numbers, schedules and
    tuples), also when ``loss_and_grads`` raises. Anything else
    ``loss_and_grads`` changes (a data iterator, running statistics) is the
    caller's; pass such arrays as ``also_restore`` to have them restored too.

    A schedule-free optimizer (:class:`lrcore.ScheduleFreeAdamW`,
    :class:`lrcore.ScheduleFreeSGD`) must be in train mode: the losses are
    then taken at y, where its gradients are, which diverges with z, the
    sequence the learning rate drives. Its own warmup (``warmup_steps``) is
    held at 0 during the sweep, so that each recorded learning rate is the one
    applied; the averaging weights and train mode are restored with the rest.

    Args:
        optimizer: Any lrcore optimizer, already holding the parameters.
        loss_and_grads: Called with no arguments; returns ``(loss, grads)``
            at the current parameters: the loss to minimize (a real number)
            and one gradient per parameter as ``optimizer.step`` takes them.
            Use a fresh mini-batch per call for a stochastic problem. With
            ``maximize=True`` report the negated objective as the loss.
        start_lr: The first learning rate (> 0).
        end_lr: The last learning rate (> start_lr).
        num_steps: The number of learning rates (optimizer steps) at most (integer >= 2).
        mode: ``"exp"`` (geometric spacing, the usual choice) or ``"linear"``.
        smoothing: :math:`\\beta` of the exponential smoothing, in [0, 1). The
            moving average spans about :math:`1/(1-\\beta)` points and lags the
            raw curve, shifting it towards larger learning rates: 0.95 (20
            points) smooths mini-batch noise while keeping the suggestion on
            the safe side; fastai's 0.98 (50 points, half of a 100-step sweep)
            put 2 of 40 suggestions past the stability limit of a quadratic
            (see docs/finding_lr.md). Use 0 for a deterministic loss.
        diverge_threshold: :math:`\\tau` (> 1), or ``None`` to never stop early
            (except on a non-finite loss).
        skip_start, skip_end: Points ignored at either end when choosing the
            suggestion (integers >= 0).
        also_restore: More arrays to snapshot and restore bitwise.

    Returns:
        An :class:`LRFinderResult`.

    Raises:
        TypeError: ``optimizer`` is not an lrcore optimizer, ``loss_and_grads``
            is not callable or returns something other than ``(loss, grads)``.
        ValueError: an argument is out of range (the message names it), or a
            schedule-free optimizer is in eval mode.

    Examples:
        >>> import numpy as np, lrcore
        >>> w = np.array([3.0, -2.0])
        >>> opt = lrcore.SGD([w], lr=0.01)
        >>> result = lrcore.find_lr(opt, lambda: (0.5 * float(w @ w), [w.copy()]), num_steps=50)
        >>> bool(1e-3 < result.suggested_lr < 2.0), w.tolist()
        (True, [3.0, -2.0])
    """
    from .optim import Optimizer

    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an lrcore optimizer, got {type(optimizer).__name__}")
    if not callable(loss_and_grads):
        raise TypeError(f"loss_and_grads must be callable, got {type(loss_and_grads).__name__}")
    start_lr = positive("start_lr", start_lr)
    end_lr = positive("end_lr", end_lr)
    if not end_lr > start_lr:
        raise ValueError(f"end_lr must be greater than start_lr, got start_lr={start_lr}, end_lr={end_lr}")
    num_steps = integer("num_steps", num_steps, 2)
    if mode not in ("exp", "linear"):
        raise ValueError(f"mode must be 'exp' or 'linear', got {mode!r}")
    smoothing = in_range("smoothing", smoothing, 0.0, 1.0, high_open=True)
    if diverge_threshold is not None:
        diverge_threshold = positive("diverge_threshold", diverge_threshold)
        if not diverge_threshold > 1.0:
            raise ValueError(f"diverge_threshold must be > 1 (or None), got {diverge_threshold}")
    skip_start = integer("skip_start", skip_start, 0)
    skip_end = integer("skip_end", skip_end, 0)
    extra = _check_extra_arrays(also_restore)
    if optimizer.rule.has_modes and not getattr(optimizer, "train_mode"):
        raise ValueError(f"find_lr needs the {type(optimizer).__name__} in train mode, where its gradients are "
                         "taken: call optimizer.train() first")

    if mode == "exp":
        schedule = start_lr * (end_lr / start_lr) ** (np.arange(num_steps) / (num_steps - 1))
    else:
        schedule = np.linspace(start_lr, end_lr, num_steps)

    snapshot = _Snapshot(optimizer, extra)
    lrs: List[float] = []
    losses: List[float] = []
    diverged = False
    try:
        _hold_hyperparameters(optimizer)
        initial_loss, grads = _call(loss_and_grads)
        if not math.isfinite(initial_loss):
            raise ValueError(f"loss_and_grads returned a non-finite loss ({initial_loss}) before any step")
        beta = smoothing
        average = 0.0
        best = math.inf
        for i, lr in enumerate(schedule.tolist()):
            for group in optimizer.param_groups:
                group["lr"] = lr
            if optimizer.step(grads) is False:
                # skip_nonfinite=True refused a non-finite gradient: the loss has diverged.
                lrs.append(lr)
                losses.append(math.nan)
                diverged = True
                break
            loss, grads = _call(loss_and_grads)
            lrs.append(lr)
            losses.append(loss)
            if not math.isfinite(loss):
                diverged = True
                break
            average = beta * average + (1.0 - beta) * loss
            smoothed = average / (1.0 - beta ** (i + 1))
            if diverge_threshold is not None and smoothed > best + (diverge_threshold - 1.0) * abs(best):
                diverged = True
                break
            best = min(best, smoothed)
    finally:
        snapshot.restore()
    return LRFinderResult(lrs, losses, initial_loss, num_steps=num_steps, mode=mode, smoothing=smoothing,
                          diverge_threshold=diverge_threshold, diverged=diverged, skip_start=skip_start,
                          skip_end=skip_end)


class _Snapshot:
    """The optimizer's own snapshot (state, hyperparameter objects, parameters) plus the caller's extra arrays."""

    def __init__(self, optimizer: Any, extra: List[np.ndarray]) -> None:
        self.optimizer_snapshot = optimizer.snapshot(params=True)
        self.extra = extra
        self.copies = [array.copy() for array in extra]

    def restore(self) -> None:
        self.optimizer_snapshot.restore()
        for array, copy in zip(self.extra, self.copies):
            np.copyto(array, copy)


def _hold_hyperparameters(optimizer: Any) -> None:
    """Replaces each scheduled hyperparameter by its value at the optimizer's next step."""
    t = optimizer.step_count
    for group in optimizer.param_groups:
        if optimizer.rule.has_modes and "warmup_steps" in group:
            # The schedule-free rules' own warmup would scale every swept lr.
            group["warmup_steps"] = 0
        for name, value in list(group.items()):
            if name in ("params", "lr", "warmup_steps"):
                continue
            if isinstance(value, tuple):
                group[name] = tuple(_value_at(item, t) for item in value)
            elif isinstance(value, list):
                group[name] = [_value_at(item, t) for item in value]
            else:
                group[name] = _value_at(value, t)


def _value_at(value: Any, t: int) -> Any:
    if callable(value) and not isinstance(value, (numbers.Number, np.ndarray)):
        return value(t)
    return value


def _call(loss_and_grads: LossAndGrads) -> Tuple[float, Sequence[Optional[np.ndarray]]]:
    returned = loss_and_grads()
    if not isinstance(returned, tuple) or len(returned) != 2:
        raise TypeError(f"loss_and_grads must return a pair (loss, grads), got {type(returned).__name__}")
    loss, grads = returned
    if isinstance(loss, np.ndarray) and loss.size == 1:
        loss = loss.reshape(())[()]
    if isinstance(loss, bool) or not isinstance(loss, numbers.Real):
        raise TypeError(f"loss_and_grads must return the loss as a real number, got {type(loss).__name__}")
    return float(loss), grads


def _check_extra_arrays(arrays: Sequence[np.ndarray]) -> List[np.ndarray]:
    if isinstance(arrays, np.ndarray):
        raise TypeError("also_restore must be a list of arrays, not a single array")
    checked = list(arrays)
    for index, array in enumerate(checked):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"also_restore[{index}] must be a numpy array, got {type(array).__name__}")
        if not array.flags.writeable:
            raise ValueError(f"also_restore[{index}] is read-only")
    return checked


