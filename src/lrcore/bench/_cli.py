"""``python -m lrcore bench``: arguments and the top-level run."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, TextIO

import numpy as np

from .. import _runtime
from ._contenders import CONTENDERS, torch_module
from ._report import CaseTable, print_opt_step, print_system, system_info, to_json
from ._rules import RULES, parse_rules
from ._runner import CaseResult, OptStepResult, Options, run_case, run_opt_step
from ._timing import TimingBudget
from ._workloads import DEFAULT_WORKLOADS, OPT_STEP, QUICK_WORKLOADS, parse_workloads

__all__ = ["DESCRIPTION", "add_arguments", "main", "run"]

DESCRIPTION = """\
Time lrcore's update rules against numpy, torch.optim (for-loop, foreach,
fused) and DeepSpeed's CPU Adam when installed, and against a memory roof
kernel that moves the same bytes. Every contender's result is first checked
against lrcore.reference; a mismatch is reported as FAILED / MISMATCH and the
exit status is 1.
"""

BUDGETS = {
    "full": TimingBudget(seconds=0.6, min_samples=5, max_samples=200, min_sample_seconds=1e-3),
    "quick": TimingBudget(seconds=0.08, min_samples=3, max_samples=50, min_sample_seconds=2e-4),
}


def _comma_list(text: str) -> List[str]:
    return [t for t in (part.strip() for part in text.split(",")) if t]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``bench`` subcommand's options."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, one thread and short timings: the whole run in well under a "
                             f"minute (sizes {','.join(QUICK_WORKLOADS)} unless --sizes is given)")
    parser.add_argument("--rules", type=_comma_list, default=None, metavar="LIST",
                        help=f"update rules: {','.join(RULES)} or all (default: all)")
    parser.add_argument("--sizes", type=_comma_list, default=None, metavar="LIST",
                        help="element counts (4096, 2^20, 64k, 16M) and named workloads: small-arrays "
                             "(2000 x 1000), gpt (172 arrays, 85.9M elements), opt-step (full Adam.step on 4096 "
                             f"elements). Default: {','.join(DEFAULT_WORKLOADS)}")
    parser.add_argument("--threads", type=_comma_list, default=None, metavar="LIST",
                        help="thread counts for lrcore and torch; 'all' = every usable CPU "
                             "(default: 1,all; with --quick: 1)")
    parser.add_argument("--against", type=_comma_list, default=None, metavar="LIST",
                        help=f"contenders: {','.join(n for n in CONTENDERS if n != 'lrcore')} "
                             "(default: all of them; with --quick numpy-ref is left out)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--seconds", type=float, default=None, metavar="S",
                        help="timing budget per interleaved group (default 0.6, with --quick 0.08)")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the results as JSON to FILE")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)


def _options(args: argparse.Namespace) -> Options:
    rules = parse_rules(args.rules or ["all"])
    workloads = parse_workloads(args.sizes or list(QUICK_WORKLOADS if args.quick else DEFAULT_WORKLOADS))
    every_cpu = _runtime.get_num_threads()
    thread_tokens = args.threads or (["1"] if args.quick else ["1", "all"])
    threads: List[int] = []
    for token in thread_tokens:
        count = every_cpu if token == "all" else int(token)
        if count < 1:
            raise ValueError(f"thread counts must be >= 1, got {token}")
        if count not in threads:
            threads.append(count)
    if args.against is None:
        against = [n for n in CONTENDERS if n != "lrcore" and not (args.quick and n == "numpy-ref")]
    else:
        unknown = [n for n in args.against if n not in CONTENDERS or n == "lrcore"]
        if unknown:
            raise ValueError(f"unknown contender(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(n for n in CONTENDERS if n != 'lrcore')}")
        against = list(dict.fromkeys(args.against))
    budget = BUDGETS["quick" if args.quick else "full"]
    if args.seconds is not None:
        budget = TimingBudget(args.seconds, budget.min_samples, budget.max_samples, budget.min_sample_seconds)
    return Options(rules, workloads, threads, against, np.dtype(args.dtype), budget, args.seed)


def run(args: argparse.Namespace, out: Optional[TextIO] = None) -> int:
    """Runs the benchmark the parsed arguments describe; returns the exit status (1 when anything failed)."""
    out = out or sys.stdout
    try:
        options = _options(args)
    except ValueError as error:
        print(f"lrcore bench: {error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    initial_threads = _runtime.get_num_threads()
    torch = torch_module() if any(n.startswith("torch") or n == "deepspeed" for n in options.against) else None
    initial_torch_threads = torch.get_num_threads() if torch is not None else None
    system = system_info()
    print_system(system, options.against, out)
    cases: List[CaseResult] = []
    opt_steps: List[OptStepResult] = []
    try:
        sized = [w for w in options.workloads if w.name != OPT_STEP]
        if sized:
            table = CaseTable(options.against, out)
            table.header()
            for rule in options.rules:
                for workload in sized:
                    for threads in options.threads:
                        try:
                            case = run_case(rule, workload, threads, options)
                        except Exception as error:  # lrcore raised: the case failed, the run goes on
                            case = CaseResult(rule.name, workload.name, workload.label, workload.arrays,
                                              workload.elements, options.dtype.name, threads, 0, "FAILED",
                                              f"{type(error).__name__}: {error}")
                        cases.append(case)
                        table.row(case)
        if any(w.name == OPT_STEP for w in options.workloads):
            workload = next(w for w in options.workloads if w.name == OPT_STEP)
            for threads in options.threads:
                result = run_opt_step(workload, threads, options)
                opt_steps.append(result)
                print_opt_step(result, out)
    finally:
        _runtime.set_num_threads(initial_threads)
        if torch is not None:
            torch.set_num_threads(initial_torch_threads)
    failed = (any(c.status != "ok" or any(e.status == "mismatch" for e in c.contenders.values()) for c in cases)
              or any(r.status != "ok" or any(e.status == "mismatch" for e in r.entries.values()) for r in opt_steps))
    elapsed = time.perf_counter() - started
    print(f"\n{'FAILED: some results did not match the reference (see above)' if failed else 'All results verified'}"
          f"; {elapsed:.0f} s.", file=out)
    if args.json:
        settings: Dict[str, Any] = {
            "rules": [r.name for r in options.rules], "sizes": [w.name for w in options.workloads],
            "threads": options.threads, "against": options.against, "dtype": options.dtype.name,
            "quick": bool(args.quick), "budget_seconds": options.budget.seconds, "seed": options.seed,
            "elapsed_seconds": elapsed,
        }
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(to_json(system, settings, cases, opt_steps, failed), file, indent=1)
        print(f"Wrote {args.json}", file=out)
    return 1 if failed else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m lrcore.bench`` without the ``lrcore`` command layer."""
    parser = argparse.ArgumentParser(prog="python -m lrcore bench", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))
