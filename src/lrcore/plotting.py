"""Pictures of schedules and of learning-rate range tests (matplotlib, optional).

matplotlib is imported only inside these functions: ``import lrcore`` never
needs it, and a missing matplotlib surfaces as an ImportError that says what
to install. A figure that is only saved to a file is drawn on a bare
``matplotlib.figure.Figure`` (no pyplot, so no GUI backend and no global
figure left open); without ``path`` and ``ax``, pyplot makes the figure so
that ``plt.show()`` displays it.
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ._arguments import integer

__all__ = ["plot_schedule", "plot_lr_finder", "plot_bench"]

_INSTALL_HINT = "pip install matplotlib (the 'plot' extra: pip install '.[plot]' from a source checkout)"

PathLike = Union[str, "os.PathLike[str]"]
# A sequence of numbers: a list, or a 1-d array.
FloatSequence = Union[Sequence[float], np.ndarray]


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(f"lrcore's plotting needs matplotlib, which is not installed: {_INSTALL_HINT}") from error
    return matplotlib


def _new_axes(ax: Any, path: Optional[PathLike]) -> Tuple[Any, Any]:
    """The Axes to draw into and its figure: ``ax``'s, a bare Figure to save, or a pyplot one to show."""
    _matplotlib()
    if ax is not None:
        if not hasattr(ax, "plot") or not hasattr(ax, "figure"):
            raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
        return ax, ax.figure
    if path is not None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    else:
        import matplotlib.pyplot as plt

        figure = plt.figure(figsize=(6.4, 4.0), layout="constrained")
    return figure.add_subplot(), figure


def _check_path(path: Optional[PathLike]) -> Optional[str]:
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    path = os.fspath(path)
    if not path:
        raise ValueError("path must not be empty")
    return path


def _save(figure: Any, path: Optional[str]) -> None:
    if path is not None:
        figure.savefig(path, dpi=100)


ScheduleArgument = Union[Callable[[int], float], Sequence[Callable[[int], float]], Mapping[str, Callable[[int], float]]]


def plot_schedule(schedule: ScheduleArgument, steps: int, *, labels: Optional[Sequence[str]] = None, ax: Any = None,
                  path: Optional[PathLike] = None, title: Optional[str] = None, log_scale: bool = False,
                  ylabel: str = "learning rate") -> Any:
    """Draws one schedule, or several for comparison, over ``t = 0 .. steps - 1``.

    Also available as ``lrcore.plot_schedule`` (and, for older code, as
    ``lrcore.schedules.plot``). Needs matplotlib (``pip install matplotlib``).

    Args:
        schedule: A schedule (any callable of the step), a list of them, or a
            dict ``{label: schedule}``.
        steps: The number of steps drawn (integer >= 1).
        labels: Legend labels, one per schedule (default: each schedule's repr,
            or the dict's keys). A legend is drawn for several schedules or
            when labels are given.
        ax: A matplotlib Axes to draw into; a new figure when ``None``.
        path: Where to save the figure (format from the suffix, e.g. ``.png``).
        title: The title (default: the repr of a single schedule).
        log_scale: Logarithmic y axis (for schedules spanning decades;
            values that are zero are left out of the drawing).
        ylabel: The y-axis label.

    Returns:
        The matplotlib Axes.

    Raises:
        ImportError: matplotlib is not installed.
        TypeError, ValueError: bad arguments (nothing is drawn then), or a
            schedule returned a value that is not a finite number.

    Examples:
        >>> from lrcore import plot_schedule
        >>> from lrcore.schedules import OneCycle, CosineAnnealing
        >>> ax = plot_schedule([OneCycle(0.1, total_steps=100), CosineAnnealing(0.1, T_max=100)], 100,
        ...                    path="schedules.png")  # doctest: +SKIP
    """
    names, schedules = _schedules_and_labels(schedule, labels)
    steps = integer("steps", steps, 1)
    path = _check_path(path)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a string, got {type(title).__name__}")
    t = np.arange(steps)
    curves = [_evaluate(s, steps, name) for s, name in zip(schedules, names)]

    ax, figure = _new_axes(ax, path)
    for curve, name in zip(curves, names):
        if log_scale:
            curve = np.where(curve > 0, curve, np.nan)
        ax.plot(t, curve, label=name, linewidth=1.6)
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, max(steps - 1, 1))
    ax.grid(True, alpha=0.3)
    if len(curves) > 1 or labels is not None or isinstance(schedule, Mapping):
        ax.legend(fontsize="small")
    if title is None and len(curves) == 1:
        title = _short(names[0], 70)
    if title:
        ax.set_title(title, fontsize="medium")
    _save(figure, path)
    return ax


def plot_lr_finder(lrs: FloatSequence, losses: FloatSequence, smoothed_losses: Optional[FloatSequence] = None,
                   *, suggested_index: Optional[int] = None, initial_loss: Optional[float] = None,
                   smoothing: Optional[float] = None, diverged: bool = False, skip_end: int = 0,
                   show_raw: bool = True, ax: Any = None, path: Optional[PathLike] = None) -> Any:
    """Draws a range test's loss against learning rate (log axis), marking the suggestion.

    Takes the numbers, not a result object, so that this module depends on
    nothing it draws; :meth:`lrcore.lr_finder.LRFinderResult.plot` passes its own.

    Args:
        lrs: The learning rates tried (1-d).
        losses: The raw loss after each step, as long as ``lrs``.
        smoothed_losses: The smoothed losses (default: ``losses``).
        suggested_index: Index into ``lrs`` of the suggestion to mark, or ``None``.
        initial_loss: The loss before the first step; keeps the y range from hiding it.
        smoothing: The smoothing factor, for the legend.
        diverged: Whether the test stopped at divergence, for the title.
        skip_end: Points left out at the end (integer >= 0), never all of them.
        show_raw: Also draw the raw losses, faintly.
        ax: A matplotlib Axes to draw into; a new figure when ``None``.
        path: Where to save the figure (format from the suffix).

    Returns:
        The matplotlib Axes.
    """
    lrs = _curve("lrs", lrs)
    raw_all = _curve("losses", losses, len(lrs))
    smoothed_all = raw_all if smoothed_losses is None else _curve("smoothed_losses", smoothed_losses, len(lrs))
    skip_end = integer("skip_end", skip_end, 0)
    if suggested_index is not None:
        suggested_index = integer("suggested_index", suggested_index, 0)
        if suggested_index >= len(lrs):
            raise ValueError(f"suggested_index must be < len(lrs) = {len(lrs)}, got {suggested_index}")
    path = _check_path(path)
    if len(lrs) == 0:
        raise ValueError("the range test recorded no steps: nothing to draw")
    # Keep the points that show the descent: leave out the blow-up at the end, but never everything.
    count = max(len(lrs) - skip_end, min(len(lrs), 2))
    lrs = lrs[:count]
    smoothed = smoothed_all[:count]
    raw = raw_all[:count]

    ax, figure = _new_axes(ax, path)
    if show_raw:
        ax.plot(lrs, raw, color="0.7", linewidth=0.8, label="loss")
    label = "smoothed loss" if smoothing is None else f"smoothed loss (β={smoothing:g})"
    ax.plot(lrs, smoothed, color="C0", linewidth=1.8, label=label)
    if suggested_index is not None and suggested_index < count:
        index = suggested_index
        ax.plot([lrs[index]], [smoothed[index]], "o", color="C3", markersize=8,
                label=f"suggested lr = {lrs[index]:.3g}")
        ax.axvline(lrs[index], color="C3", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    finite = smoothed[np.isfinite(smoothed)]
    if show_raw:
        finite_raw = raw[np.isfinite(raw)]
        low = min(finite.min(initial=np.inf), finite_raw.min(initial=np.inf))
    else:
        low = finite.min(initial=np.inf)
    if finite.size and math.isfinite(low):
        # The drawing is about the descent; a huge initial or final loss would flatten it.
        high = float(finite.max())
        if initial_loss is not None and math.isfinite(initial_loss):
            high = max(high, float(initial_loss))
        margin = 0.05 * (high - low) if high > low else 1.0
        ax.set_ylim(low - margin, high + margin)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title("learning-rate range test" + (" (stopped at divergence)" if diverged else ""), fontsize="medium")
    _save(figure, path)
    return ax


def _curve(name: str, values: Any, length: Optional[int] = None) -> np.ndarray:
    """``values`` as a 1-d float64 array (of ``length`` points when given); errors name the argument."""
    if isinstance(values, (str, bytes, Mapping)):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(values).__name__}")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(values).__name__}") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {array.shape}")
    if length is not None and len(array) != length:
        raise ValueError(f"{name} must have one value per learning rate ({length}), got {len(array)}")
    return array


def _schedules_and_labels(schedule: Any, labels: Optional[Sequence[str]]) -> Tuple[List[str], List[Any]]:
    if isinstance(schedule, Mapping):
        if labels is not None:
            raise ValueError("labels must not be given with a dict of schedules (its keys are the labels)")
        names = list(schedule.keys())
        schedules = list(schedule.values())
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"the keys of a dict of schedules must be strings, got {type(name).__name__}")
    elif isinstance(schedule, (list, tuple)):
        schedules = list(schedule)
        names = [_short(repr(s), 60) for s in schedules]
    else:
        schedules = [schedule]
        names = [repr(schedule)]
    if not schedules:
        raise ValueError("schedule: nothing to draw (an empty list)")
    for index, item in enumerate(schedules):
        if not callable(item) or isinstance(item, type):
            raise TypeError(f"schedule[{index}] must be a schedule (a callable of the step), got {type(item).__name__}")
    if labels is not None:
        if isinstance(labels, str) or not isinstance(labels, Sequence):
            raise TypeError(f"labels must be a list of strings, got {type(labels).__name__}")
        if len(labels) != len(schedules):
            raise ValueError(f"labels has {len(labels)} entries for {len(schedules)} schedule(s)")
        for label in labels:
            if not isinstance(label, str):
                raise TypeError(f"labels must be strings, got {type(label).__name__}")
        names = list(labels)
    return names, schedules



def _evaluate(schedule: Callable[[int], float], steps: int, name: str) -> np.ndarray:
    values = np.empty(steps, dtype=np.float64)
    for t in range(steps):
        value = schedule(t)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{_short(name, 60)} returned {type(value).__name__} at t={t}, expected a number")
        values[t] = float(value)
        if not math.isfinite(values[t]):
            raise ValueError(f"{_short(name, 60)} returned {values[t]} at t={t}, expected a finite number")
    return values


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: File formats :func:`plot_bench` writes, by the path's extension.
BENCH_PLOT_FORMATS = {".png": "png", ".svg": "svg"}


def bench_plot_format(path: PathLike) -> str:
    """The format ("png" or "svg") of a ``--plot`` path, by its extension; ValueError for any other."""
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension not in BENCH_PLOT_FORMATS:
        raise ValueError(f"the plot file must end in .png or .svg, got {os.fspath(path)!r}")
    return BENCH_PLOT_FORMATS[extension]


def _ratio_error(value: float, *spreads: Optional[float]) -> float:
    """Half the interquartile width of a ratio whose cells have these relative IQRs (to first order)."""
    return value * sum(s for s in spreads if s is not None) / 2


def _timed(entry: Any) -> bool:
    return entry is not None and entry.status == "ok" and bool(entry.seconds) and bool(entry.lrcore_seconds)


def plot_bench(cases: Sequence[Any], path: Optional[PathLike] = None, *, title: Optional[str] = None) -> Any:
    """Draws a benchmark run's results: lrcore's time over the roof, and its speedup over each contender.

    Args:
        cases: the cases the bench runner produced (``lrcore.bench._runner.CaseResult``:
            rule, label, threads, status, lrcore_seconds, roof_seconds, the spreads and
            ``contenders``, each with status, seconds, lrcore_seconds and spreads).
            Failed cases and contenders that were not timed are left out.
        path: where to write the figure, PNG or SVG by its extension, atomically
            (a temporary file in the same directory, then renamed). None: only returns it.
        title: the figure's title.

    Returns:
        The ``matplotlib.figure.Figure``: one row per rule, in the order the rules
        first appear. Its left panel has one bar per case of the rule (size and
        threads: lrcore time / roof time; 1 = as fast as moving the bytes allows),
        its right panel one bar per case and timed contender (their time / lrcore's,
        log scale; each contender keeps its colour in every row, and the first row's
        legend names them all). Error bars: half the interquartile range of the
        ratio, from the two cells' relative IQRs added.
    """
    file_path = _check_path(path)
    file_format = bench_plot_format(file_path) if file_path is not None else None
    _matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ok = [c for c in cases if c.status == "ok" and c.lrcore_seconds and c.roof_seconds]
    rules = list(dict.fromkeys(c.rule for c in ok))
    by_rule = {rule: [c for c in ok if c.rule == rule] for rule in rules}
    contenders: List[str] = []
    for case in ok:
        for name, entry in case.contenders.items():
            if _timed(entry) and name not in contenders:
                contenders.append(name)
    colors = {name: f"C{(k + 1) % 10}" for k, name in enumerate(contenders)}  # C0 is the roof panel's
    most = max((len(group) for group in by_rule.values()), default=1)
    width = max(9.0, most * (0.45 + 0.12 * len(contenders)) + 3.0)
    figure = Figure(figsize=(width, 0.8 + 2.3 * max(1, len(rules))), layout="constrained")
    axes = figure.subplots(max(1, len(rules)), 2, squeeze=False)
    times = FuncFormatter(lambda value, _: f"{value:g}x")
    if not rules:
        for ax in axes[0]:
            ax.text(0.5, 0.5, "no case finished", transform=ax.transAxes, ha="center", va="center")
    for row, rule in enumerate(rules):
        group = by_rule[rule]
        roof_ax, speed_ax = axes[row]
        x = np.arange(len(group), dtype=float)
        labels = [c.label + (f"\n{c.threads} thr" if c.threads != 1 else "") for c in group]

        roof = [c.lrcore_seconds / c.roof_seconds for c in group]
        roof_error = [_ratio_error(r, c.lrcore_spread, c.roof_spread) for r, c in zip(roof, group)]
        roof_ax.bar(x, roof, 0.6, yerr=roof_error, capsize=3, color="C0", label="lrcore / roof")
        roof_ax.axhline(1.0, color="gray", linewidth=0.8, linestyle="--")
        roof_ax.set_ylabel(f"{rule}\ntime / roof")
        roof_ax.set_xticks(x, labels, fontsize=7)

        bar = 0.8 / max(1, len(contenders))
        for k, name in enumerate(contenders):
            xs: List[float] = []
            values: List[float] = []
            errors: List[float] = []
            for i, case in enumerate(group):
                entry = case.contenders.get(name)
                if not _timed(entry):
                    continue
                value = entry.seconds / entry.lrcore_seconds
                xs.append(x[i] - 0.4 + bar * (k + 0.5))
                values.append(value)
                errors.append(min(_ratio_error(value, entry.spread, entry.lrcore_spread), 0.9 * value))
            if xs:
                speed_ax.bar(xs, values, bar, yerr=errors, capsize=2, color=colors[name], label=name)
        speed_ax.axhline(1.0, color="gray", linewidth=0.8, linestyle="--")
        speed_ax.set_yscale("log")
        speed_ax.yaxis.set_major_formatter(times)
        low, high = speed_ax.get_ylim()
        # Minor ticks are labelled only within a decade: over several they would overlap.
        speed_ax.yaxis.set_minor_formatter(times if high < 10 * low else NullFormatter())
        speed_ax.set_ylabel("lrcore's speedup")
        speed_ax.set_xticks(x, labels, fontsize=7)
        if not speed_ax.patches:
            speed_ax.text(0.5, 0.5, "no contender was timed", transform=speed_ax.transAxes, ha="center",
                          va="center")
        if row == 0:
            roof_ax.set_title("lrcore time over the memory roof (lower is better; 1 = memory bound)", fontsize=9)
            speed_ax.set_title("lrcore's speedup: their time / lrcore's (higher is better)", fontsize=9)
            if contenders:
                speed_ax.legend(handles=[Patch(color=colors[name], label=name) for name in contenders],
                                fontsize=7, ncol=min(len(contenders), 5))
    if title:
        figure.suptitle(title)
    if file_path is not None:
        directory = os.path.dirname(os.path.abspath(file_path))
        descriptor, temporary = tempfile.mkstemp(prefix=".lrcore-plot-", suffix=os.path.splitext(file_path)[1],
                                                 dir=directory)
        try:
            with os.fdopen(descriptor, "wb") as file:
                figure.savefig(file, format=file_format, dpi=100)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it private; a plot is an ordinary file
            os.replace(temporary, file_path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
    return figure
