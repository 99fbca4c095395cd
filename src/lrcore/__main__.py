"""Command line: ``python -m lrcore <command> [options]``.

Each command is an entry of :data:`_commands`: its name, a one-line help and
the module implementing it. The module provides ``add_arguments(parser)``
(declares its options on an argparse subparser) and ``run(args) -> int``
(the exit status), and may define ``DESCRIPTION`` and ``EPILOG`` for its
``--help``. Adding a command is adding an entry here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Dict, NamedTuple, Optional, Sequence


class Command(NamedTuple):
    help: str
    module: str


_commands: Dict[str, Command] = {
    "bench": Command("time the update rules against numpy, torch.optim and a memory roof", "lrcore.bench"),
    "plot": Command("draw learning-rate schedules to an image file (needs matplotlib)", "lrcore._plot_command"),
    "bench-distributed": Command("time the ZeRO-1 sharded step under mpiexec (needs lrcore[mpi])",
                                 "lrcore.distributed._bench"),
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs one command (``lrcore COMMAND`` or ``python -m lrcore COMMAND``); returns its exit status."""
    import lrcore

    prog = "lrcore" if sys.argv and sys.argv[0].endswith("lrcore") and argv is None else "python -m lrcore"
    parser = argparse.ArgumentParser(prog=prog, description="lrcore command line tools.")
    parser.add_argument("--version", action="version",
                        version=f"lrcore {lrcore.__version__} (kernels: {lrcore.isa()}, "
                                f"available: {', '.join(lrcore.available_isas())})")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    modules = {}
    for name, command in _commands.items():
        module = modules[name] = importlib.import_module(command.module)
        subparser = subparsers.add_parser(name, help=command.help, description=getattr(module, "DESCRIPTION", None),
                                          epilog=getattr(module, "EPILOG", None))
        module.add_arguments(subparser)
    args = parser.parse_args(argv)
    status: int = modules[args.command].run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
