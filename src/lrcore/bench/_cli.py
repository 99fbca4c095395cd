"""``python -m lrcore bench``: arguments and the top-level run."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, TextIO

import numpy as np

from .. import _runtime
from ._contenders import CONTENDERS, torch_module
from ._plan import Progress, format_bytes, format_duration, make_plan, print_plan
from ._report import CaseTable, print_opt_step, print_system, system_info, to_json
from ._rules import RULES, parse_rules
from ._runner import CaseResult, OptStepResult, Options, run_case, run_opt_step
from ._timing import TimingBudget
from ._embedding import EmbeddingResult, embedding_json, print_embedding, run_embedding
from ._mixed import (LAYOUT_LABELS, MIXED_DEFAULT_AGAINST, MIXED_DEFAULT_RULES, is_mixed, layouts_json, print_layouts,
                     run_mixed_case, sixteen_bit_dtype)
from ._workloads import DEFAULT_WORKLOADS, EMBEDDING, OPT_STEP, QUICK_WORKLOADS, parse_workloads

__all__ = ["DESCRIPTION", "add_arguments", "main", "run"]

DESCRIPTION = """\
Time lrcore's update rules against numpy, torch.optim (for-loop, foreach,
fused), DeepSpeed's CPU Adam/Adagrad and bitsandbytes' CPU Adam (32- and 8-bit) when installed, and against a memory roof
kernel that moves the same bytes. Every contender's result is first checked
against lrcore.reference; a mismatch is reported as FAILED / MISMATCH and the
exit status is 1. --dtype bfloat16 / float16 gives one row per 16-bit storage
layout, each verified bitwise (or, with stochastic rounding, by distribution
and by repeating it), against lrcore float32 on the same values.

Before it starts the run prints its plan (cells, contenders, estimated time
and memory); on a terminal it shows progress with an ETA on stderr. Ctrl-C
prints what finished and exits with status 130. Unless OMP_WAIT_POLICY is
already set, the bench sets it to passive before importing torch, so torch's
idle OpenMP workers do not spin on the cores lrcore is timed on.
"""

#: Exit status after Ctrl-C (128 + SIGINT), as a shell reports it.
INTERRUPTED = 130

_policy_set_by_bench = False


def omp_wait_policy() -> str:
    """Sets OMP_WAIT_POLICY=passive unless the user set it or torch is already loaded; says which, for the header.

    OpenMP (torch's libgomp) reads the variable once, when it loads: after a
    torch step its workers otherwise spin for a while (GOMP_SPINCOUNT) and hold
    the cores the next lrcore timing needs.
    """
    global _policy_set_by_bench
    value = os.environ.get("OMP_WAIT_POLICY")
    if value is not None and not _policy_set_by_bench:
        return f"OMP_WAIT_POLICY={value} (set by you; the bench leaves it alone)"
    if value is None and "torch" in sys.modules:
        return ("OMP_WAIT_POLICY not set, and torch was imported before the bench started: torch's idle OpenMP "
                "workers may spin and slow lrcore's multi-threaded cells")
    if value is None:
        os.environ["OMP_WAIT_POLICY"] = "passive"
        _policy_set_by_bench = True
    return ("OMP_WAIT_POLICY=passive (set by the bench before importing torch, so torch's idle OpenMP workers "
            "sleep instead of\n         spinning on the cores lrcore is timed on; set OMP_WAIT_POLICY yourself to "
            "override)")


def _peak_rss() -> Optional[int]:
    """This process's peak resident set size in bytes, where the platform reports it."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) * (1 if sys.platform == "darwin" else 1024)

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
                        help="element counts (4096, 2^20, 64k, 16M), matrices (4096x4096: what Adafactor "
                             "factors) and named workloads: small-arrays "
                             "(2000 x 1000), gpt (172 arrays, 85.9M elements), opt-step (full Adam.step on 4096 "
                             f"elements). Default: {','.join(DEFAULT_WORKLOADS)}")
    parser.add_argument("--threads", type=_comma_list, default=None, metavar="LIST",
                        help="thread counts for lrcore and torch; 'all' = every usable CPU "
                             "(default: 1,all; with --quick: 1)")
    parser.add_argument("--against", type=_comma_list, default=None, metavar="LIST",
                        help=f"contenders: {','.join(n for n in CONTENDERS if n != 'lrcore')} "
                             "(default: all of them; with --quick numpy-ref is left out)")
    parser.add_argument("--dtype", choices=("float32", "float64", "bfloat16", "float16"), default="float32",
                        help="parameter dtype (default float32). bfloat16/float16: one row per storage layout "
                             "(float32 state; bfloat16 state with stochastic rounding; float32 master weights), each "
                             "verified, then timed in one group with lrcore float32 on the same values, each "
                             "layout's roof and the contenders (default --against: "
                             f"{','.join(MIXED_DEFAULT_AGAINST)}; rules default: {','.join(MIXED_DEFAULT_RULES)})")
    parser.add_argument("--seconds", type=float, default=None, metavar="S",
                        help="timing budget per interleaved group (default 0.6, with --quick 0.08)")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the results as JSON to FILE")
    parser.add_argument("--plot", metavar="FILE", default=None,
                        help="also draw the results (time over the roof, speedup over each contender, with error "
                             "bars from the spreads) to FILE, PNG or SVG by its extension; needs matplotlib")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress line on stderr (it is shown only when stderr is a terminal anyway)")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)


def _plot_problem(path: str) -> Optional[str]:
    """Why ``--plot path`` cannot work (a wrong extension, no matplotlib), or None."""
    from ..plotting import bench_plot_format

    try:
        bench_plot_format(path)
    except ValueError as error:
        return str(error)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "drawing the plot needs matplotlib, which is not installed: pip install matplotlib"
    return None


def _options(args: argparse.Namespace) -> Options:
    mixed = args.dtype in ("bfloat16", "float16")
    dtype = sixteen_bit_dtype(args.dtype) if mixed else np.dtype(args.dtype)
    rules = parse_rules(args.rules or (list(MIXED_DEFAULT_RULES) if mixed else ["all"]))
    workloads = parse_workloads(args.sizes or list(QUICK_WORKLOADS if args.quick else DEFAULT_WORKLOADS))
    if mixed:  # opt-step and the embedding table are float32/float64 sections
        workloads = [w for w in workloads if w.name not in (OPT_STEP, EMBEDDING)]
        if not workloads:
            raise ValueError(f"--dtype {args.dtype} times element counts and array lists only "
                             f"(not {OPT_STEP} or {EMBEDDING})")
    every_cpu = _runtime.get_num_threads()
    thread_tokens = args.threads or (["1"] if args.quick else ["1", "all"])
    threads: List[int] = []
    for token in thread_tokens:
        count = every_cpu if token == "all" else int(token)
        if count < 1:
            raise ValueError(f"thread counts must be >= 1, got {token}")
        if count not in threads:
            threads.append(count)
    if args.against is None and mixed:
        against = list(MIXED_DEFAULT_AGAINST)
    elif args.against is None:
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
    return Options(rules, workloads, threads, against, dtype, budget, args.seed)


def run(args: argparse.Namespace, out: Optional[TextIO] = None, progress_stream: Optional[TextIO] = None) -> int:
    """Runs the benchmark the parsed arguments describe; returns the exit status.

    0: everything verified; 1: something did not match the reference; 2: bad
    arguments; 130: interrupted (Ctrl-C), after printing what finished.
    Progress goes to ``progress_stream`` (default stderr) only when it is a terminal.
    """
    out = out or sys.stdout
    try:
        options = _options(args)
    except ValueError as error:
        print(f"lrcore bench: {error}", file=sys.stderr)
        return 2
    if args.plot:
        problem = _plot_problem(args.plot)
        if problem:  # before anything is timed
            print(f"lrcore bench: --plot: {problem}", file=sys.stderr)
            return 2
    started = time.perf_counter()
    omp_note = omp_wait_policy()  # before anything imports torch
    initial_threads = _runtime.get_num_threads()
    torch = torch_module() if any(n.startswith(("torch", "deepspeed", "bnb")) for n in options.against) else None
    initial_torch_threads = torch.get_num_threads() if torch is not None else None
    system = system_info()
    system["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
    print_system(system, options.against, out, omp_note)
    mixed = is_mixed(options.dtype)
    # 16-bit rows: the float32 state dominates the memory estimate (the plan counts one dtype per set).
    itemsize = 4 if mixed else options.dtype.itemsize
    plan = make_plan(options.rules, options.workloads, options.threads, options.against, itemsize,
                     options.budget, mixed)
    print_plan(plan, options.rules, options.workloads, options.threads, options.against, itemsize,
               options.dtype.name, options.budget, out)
    if mixed:
        print_layouts(options.rules, options.dtype, out)
    progress = Progress(plan, progress_stream, enabled=False if args.no_progress else None)
    cases: List[CaseResult] = []
    opt_steps: List[OptStepResult] = []
    embeddings: List[EmbeddingResult] = []
    table = CaseTable(["lrcore-float32", *options.against] if mixed else options.against, out, mixed)
    interrupted = False
    try:
        if plan.cells:
            table.header()
        for index, cell in enumerate(plan.cells):
            progress.start_cell(index, cell)
            progress.phase("starting")
            try:
                rows = (run_mixed_case(cell.rule, cell.workload, cell.threads, options, progress.phase) if mixed
                        else [run_case(cell.rule, cell.workload, cell.threads, options, progress.phase)])
            except Exception as error:  # lrcore raised: the case failed, the run goes on
                workload = cell.workload
                rows = [CaseResult(cell.rule.name, workload.name, workload.label, workload.arrays,
                                   workload.elements, options.dtype.name, cell.threads, 0, "FAILED",
                                   f"{type(error).__name__}: {error}")]
            progress.finish_cell(cell)
            progress.clear()
            for case in rows:
                cases.append(case)
                table.row(case)
        table.legend()
        opt_step = next((w for w in options.workloads if w.name == OPT_STEP), None)
        if opt_step is not None:
            for threads in plan.opt_step_threads:
                progress.start_other(f"opt-step, {threads} thread{'s' if threads > 1 else ''}")
                progress.phase("timing")
                result = run_opt_step(opt_step, threads, options)
                progress.clear()
                opt_steps.append(result)
                print_opt_step(result, out)
        if any(w.name == EMBEDDING for w in options.workloads):
            with_torch = any(n.startswith("torch") for n in options.against)
            for threads in options.threads:
                progress.start_other(f"embedding, {threads} thread{'s' if threads > 1 else ''}")
                embedding = run_embedding(options.dtype, threads, options.budget, with_torch, options.seed,
                                          progress.phase)
                progress.clear()
                embeddings.append(embedding)
                single = next((e for e in embeddings if e.threads == 1), None)
                print_embedding(embedding, out, single if threads != 1 else None)
    except KeyboardInterrupt:
        interrupted = True
        progress.clear()
        table.reprint(f"Interrupted (Ctrl-C) after {len(cases)} of {len(plan.cells)} table rows"
                      f"{' and ' + str(len(opt_steps)) + ' opt-step runs' if opt_steps else ''}; what finished:")
    finally:
        progress.clear()
        _runtime.set_num_threads(initial_threads)
        if torch is not None:
            torch.set_num_threads(initial_torch_threads)
    failed = (any(c.status != "ok" or any(e.status == "mismatch" for e in c.contenders.values()) for c in cases)
              or any(r.status != "ok" or any(e.status == "mismatch" for e in r.entries.values()) for r in opt_steps)
              or any(r.status != "ok" or any(e.status == "mismatch" for e in r.entries.values())
                     for r in embeddings))
    elapsed = time.perf_counter() - started
    peak = _peak_rss()
    verdict = ("FAILED: some results did not match the reference (see above)" if failed
               else "Interrupted; the results shown were verified" if interrupted else "All results verified")
    print(f"\n{verdict}; {format_duration(elapsed)} (estimated {format_duration(plan.estimate)})"
          f"{', peak memory ' + format_bytes(peak) if peak else ''}.", file=out)
    if args.json:
        settings: Dict[str, Any] = {
            "rules": [r.name for r in options.rules], "sizes": [w.name for w in options.workloads],
            "threads": options.threads, "against": options.against, "dtype": options.dtype.name,
            "quick": bool(args.quick), "budget_seconds": options.budget.seconds, "seed": options.seed,
            "elapsed_seconds": elapsed, "estimated_seconds": plan.estimate, "peak_rss_bytes": peak,
        }
        if mixed:
            settings["layouts"] = layouts_json(options.rules, options.dtype)
        with open(args.json, "w", encoding="utf-8") as file:
            report = to_json(system, settings, cases, opt_steps, failed, interrupted)
            report["embedding"] = [embedding_json(e) for e in embeddings]
            json.dump(report, file, indent=1)
        print(f"Wrote {args.json}", file=out)
    if args.plot:
        from ..plotting import plot_bench

        # 16-bit rows: the layout joins the size in each bar group's label.
        plotted = [dataclasses.replace(c, label=f"{c.label} {LAYOUT_LABELS.get(c.layout, c.layout)}") if c.layout
                   else c for c in cases]
        plot_bench(plotted, args.plot, title=f"lrcore {system['lrcore']} ({system['isa']}) on {system['cpu']}, "
                                           f"{options.dtype.name}")
        print(f"Wrote {args.plot}", file=out)
    if interrupted:
        return INTERRUPTED
    return 1 if failed else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m lrcore.bench`` without the ``lrcore`` command layer."""
    parser = argparse.ArgumentParser(prog="python -m lrcore bench", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))
