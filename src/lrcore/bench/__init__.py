"""The benchmark behind ``python -m lrcore bench``.

Times every update rule at several sizes against numpy, torch.optim and
DeepSpeed's CPU Adam (when installed) and against a memory roof kernel that
streams the same bytes with trivial arithmetic, after checking each result
against :mod:`lrcore.reference`. With ``--dtype bfloat16`` or ``float16`` each
case gives one row per 16-bit storage layout (:mod:`lrcore.bench._mixed`),
timed against lrcore float32, torch fused and DeepSpeedCPUAdam on 16-bit
parameters. ``python -m lrcore bench --help`` lists the
options; docs/benchmarks.md has results and how to read them.

Example:
    >>> from lrcore.bench import main
    >>> main(["--quick", "--rules", "adam", "--sizes", "4096"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

from ._cli import DESCRIPTION, add_arguments, main, run
from ._runner import VerificationError, verified_step
from ._workloads import Workload, parse_workloads

__all__ = ["DESCRIPTION", "VerificationError", "Workload", "add_arguments", "main", "parse_workloads", "run",
           "verified_step"]
