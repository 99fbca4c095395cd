"""``python -m lrcore plot``: draw a schedule written on the command line to an image file.

Example::

    python -m lrcore plot "OneCycle(0.1, total_steps=1000)" -o onecycle.png
    python -m lrcore plot "Warmup(CosineAnnealing(0.1, T_max=900), warmup_steps=100)" \\
        "OneCycle(0.1, total_steps=1000)" -o compare.png --steps 1000

Each expression is parsed safely (see :mod:`lrcore._expression`); a bad one
is reported in one message with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional, Sequence

__all__ = ["add_arguments", "run", "main", "default_steps"]

DESCRIPTION = "Draw learning-rate schedules, written as expressions, to an image file (needs matplotlib)."
EPILOG = (
    "Expressions use the constructors of lrcore.schedules with numbers, True/False/None, short strings and "
    "lists, e.g. \"OneCycle(0.1, total_steps=1000)\" or "
    "\"Warmup(CosineAnnealing(0.1, T_max=900), warmup_steps=100)\". Nothing else is evaluated."
)
#: Steps drawn when neither --steps nor the schedule says how long it is.
FALLBACK_STEPS = 1000
MAX_STEPS = 10_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the ``plot`` arguments on ``parser`` (a subcommand's parser or a standalone one)."""
    parser.add_argument("expressions", nargs="+", metavar="SCHEDULE",
                        help="a schedule expression; give several to compare them")
    parser.add_argument("-o", "--output", required=True, metavar="PATH",
                        help="image file to write (format from the suffix: .png, .svg, .pdf)")
    parser.add_argument("--steps", type=int, default=None, metavar="N",
                        help="steps to draw (default: the schedule's own length, e.g. total_steps or T_max, "
                             f"else {FALLBACK_STEPS})")
    parser.add_argument("--label", action="append", default=None, metavar="TEXT", dest="labels",
                        help="legend label of each schedule, in order (repeat once per schedule)")
    parser.add_argument("--log", action="store_true", help="logarithmic y axis")
    parser.add_argument("--title", default=None, help="figure title")


def run(args: argparse.Namespace) -> int:
    """Runs the command on parsed arguments; returns the exit code (0, or 2 for bad input)."""
    from ._expression import ExpressionError, parse_schedule

    schedules = []
    for text in args.expressions:
        try:
            schedules.append(parse_schedule(text))
        except ExpressionError as error:
            return _fail(f"bad schedule expression {text!r}: {error}")
    if args.labels is not None and len(args.labels) != len(schedules):
        return _fail(f"--label was given {len(args.labels)} time(s) for {len(schedules)} schedule(s)")
    steps = args.steps if args.steps is not None else max(default_steps(s) for s in schedules)
    if not 1 <= steps <= MAX_STEPS:
        return _fail(f"--steps must be between 1 and {MAX_STEPS}, got {steps}")
    try:
        from .plotting import plot_schedule

        if len(schedules) == 1 and args.labels is None:
            plot_schedule(schedules[0], steps, path=args.output, title=args.title, log_scale=args.log)
        else:
            plot_schedule(schedules, steps, labels=args.labels, path=args.output, title=args.title,
                          log_scale=args.log)
    except ImportError as error:
        print(f"lrcore plot: {error}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:
        return _fail(f"cannot write {args.output!r}: {error}")
    print(f"wrote {args.output} ({steps} steps)")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command on its own: ``main(["OneCycle(0.1, total_steps=1000)", "-o", "a.png"])``."""
    parser = argparse.ArgumentParser(prog="python -m lrcore plot", description=DESCRIPTION, epilog=EPILOG)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def default_steps(schedule: Any) -> int:
    """How many steps show the whole of ``schedule``: its declared length, else a fallback.

    One period for closed forms that have one (``total_steps``, ``T_max``,
    three restarts of ``T_0``, two cycles of :class:`Cyclic`), warmup plus
    the wrapped schedule, the last milestone plus the last schedule, and
    1000 otherwise.
    """
    from . import schedules as s

    if isinstance(schedule, s.Warmup):
        return schedule.warmup_steps + default_steps(schedule.schedule)
    if isinstance(schedule, s.Sequential):
        return schedule.milestones[-1] + default_steps(schedule.schedules[-1]) if schedule.milestones \
            else default_steps(schedule.schedules[0])
    if isinstance(schedule, s.Chained):
        return max(default_steps(child) for child in schedule.schedules)
    if isinstance(schedule, s.ReduceOnPlateau):
        return default_steps(schedule.schedule)
    if isinstance(schedule, s.CosineAnnealingWarmRestarts):
        return sum(schedule.T_0 * schedule.T_mult ** k for k in range(3))
    if isinstance(schedule, (s.Cyclic, s.CyclicMomentum)):
        return 2 * (schedule.step_size_up + schedule.step_size_down)
    if isinstance(schedule, s.MultiStepDecay) and schedule.milestones:
        return int(schedule.milestones[-1] * 1.25) + 1
    if isinstance(schedule, s.StepDecay):
        return 4 * schedule.step_size
    for name in ("total_steps", "T_max"):
        value = getattr(schedule, name, None)
        if isinstance(value, int) and value > 0:
            return value + 1
    return FALLBACK_STEPS


def _fail(message: str) -> int:
    print(f"lrcore plot: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
