"""Command line: ``python -m lrcore <command> [options]``.

Each command is an entry of :data:`_commands`: a one-line help, a function
adding its arguments to an argparse subparser, and a function running it
that returns the exit status. Commands import their modules lazily, so
``--help`` and each command load only what they need. To add one (say
``plot``), add an entry here.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Dict, NamedTuple, Optional, Sequence


class Command(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    from .bench import add_arguments

    add_arguments(parser)


def _bench_run(args: argparse.Namespace) -> int:
    from .bench import run

    return run(args)


def _plot_arguments(parser: argparse.ArgumentParser) -> None:
    from ._plot_command import add_arguments

    add_arguments(parser)


def _plot_run(args: argparse.Namespace) -> int:
    from ._plot_command import run

    return run(args)


_commands: Dict[str, Command] = {
    "bench": Command("time the update rules against numpy, torch and a memory roof", _bench_arguments, _bench_run),
    "plot": Command("draw learning-rate schedules, written as expressions, to an image file", _plot_arguments,
                    _plot_run),
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lrcore", description="lrcore command line tools.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, command in _commands.items():
        command.add_arguments(subparsers.add_parser(name, help=command.help))
    args = parser.parse_args(argv)
    return _commands[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
