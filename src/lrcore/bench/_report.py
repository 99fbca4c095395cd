"""What the benchmark prints and saves: the machine, the results table, JSON."""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
from typing import Any, Dict, List, Optional, Sequence, TextIO

import numpy as np

from .. import __version__, _runtime
from ._contenders import CONTENDERS, deepspeed_adam, torch_module
from ._runner import CaseResult, OptStepResult

__all__ = ["CaseTable", "format_seconds", "print_opt_step", "print_system", "system_info", "to_json"]

#: Column headings of the contenders in the table.
SHORT_NAMES = {
    "numpy": "numpy", "numpy-ref": "np-ref", "torch-loop": "t-loop", "torch-foreach": "t-foreach",
    "torch-fused": "t-fused", "deepspeed": "dspeed",
}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # type: ignore[attr-defined,unused-ignore]  # Linux only
    except AttributeError:
        return os.cpu_count() or 1


def system_info() -> Dict[str, Any]:
    """The machine and software a run measured, for the report header and the JSON file."""
    torch = torch_module()
    deepspeed = sys.modules.get("deepspeed") if deepspeed_adam() is not None else None
    return {
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "cpus_usable": _usable_cpus(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "lrcore": __version__,
        "isa": _runtime.isa(),
        "isas_available": _runtime.available_isas(),
        "lrcore_threads_default": _runtime.get_num_threads(),
        "numpy": np.__version__,
        "torch": getattr(torch, "__version__", None),
        "torch_threads_default": torch.get_num_threads() if torch is not None else None,
        "deepspeed": getattr(deepspeed, "__version__", None),
    }


def print_system(info: Dict[str, Any], against: Sequence[str], out: TextIO) -> None:
    print(f"CPU      {info['cpu']} ({info['machine']}, {info['cpus_usable']} usable CPUs)", file=out)
    print(f"lrcore   {info['lrcore']}, ISA {info['isa']} (available: {', '.join(info['isas_available'])}), "
          f"{info['lrcore_threads_default']} threads by default", file=out)
    print(f"numpy    {info['numpy']}", file=out)
    torch = info["torch"]
    print(f"torch    {torch + ', ' + str(info['torch_threads_default']) + ' threads by default' if torch else 'not installed'}",
          file=out)
    print(f"deepspeed {info['deepspeed'] or 'not installed'}", file=out)
    print(f"python   {info['python']} on {info['platform']}", file=out)
    print("Compared with:", file=out)
    for name in against:
        contender = CONTENDERS[name]
        missing = contender.unavailable()
        print(f"  {SHORT_NAMES.get(name, name):<10} {contender.title}{'  [' + missing + ']' if missing else ''}",
              file=out)


def format_seconds(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _ratio(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}"


def _speedup(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f}x" if value < 100 else f"{value:.0f}x"


class CaseTable:
    """Prints the results table one row at a time, as cases finish."""

    def __init__(self, against: Sequence[str], out: TextIO) -> None:
        self.against = list(against)
        self.out = out
        self.columns = [("rule", 9, "<"), ("size", 16, "<"), ("thr", 3, ">"), ("lrcore", 9, ">"),
                        ("GB/s", 6, ">"), ("/roof", 6, ">"), ("1->N", 5, ">")]
        self.columns += [(SHORT_NAMES.get(name, name), 9, ">") for name in self.against]

    def _line(self, cells: Sequence[str]) -> str:
        parts = [f"{cell:{align}{width}}" for cell, (_, width, align) in zip(cells, self.columns)]
        return "  ".join(parts).rstrip()

    def header(self) -> None:
        print("\nlrcore time: median per step. GB/s: bytes a step must move / time. /roof: lrcore time / the roof "
              "kernel's\n(same bytes, trivial arithmetic, same threads). 1->N: lrcore 1-thread time / N-thread "
              "time. Other\ncolumns: how many times faster lrcore is (their median / lrcore's, interleaved in this "
              "run).\n", file=self.out)
        print(self._line([name for name, _, _ in self.columns]), file=self.out)
        print(self._line(["-" * width for _, width, _ in self.columns]), file=self.out)

    def row(self, case: CaseResult) -> None:
        head = [case.rule, case.label, str(case.threads)]
        if case.status != "ok":
            print(self._line(head) + f"  FAILED: {case.reason}", file=self.out, flush=True)
            return
        cells = head + [format_seconds(case.lrcore_seconds), f"{case.gigabytes_per_second:.1f}",
                        _ratio(case.time_over_roof), _ratio(case.thread_speedup)]
        notes: List[str] = []
        for name in self.against:
            entry = case.contenders.get(name)
            if entry is None or entry.status == "n/a":
                cells.append("-")
            elif entry.status == "ok":
                cells.append(_speedup(entry.speedup))
            else:
                cells.append(entry.status.upper())
                notes.append(f"    {name}: {entry.reason}")
        print(self._line(cells), file=self.out, flush=True)
        for note in notes:
            print(note, file=self.out, flush=True)


def print_opt_step(result: OptStepResult, out: TextIO) -> None:
    print(f"\nFull opt.step overhead: Adam {result.dtype}, one {result.elements}-element array, "
          f"{result.threads} thread{'s' if result.threads > 1 else ''}", file=out)
    if result.status != "ok":
        print(f"  FAILED: {result.reason}", file=out)
    for name, entry in result.entries.items():
        if entry.status != "ok":
            print(f"  {entry.title:<52} {entry.status.upper()}: {entry.reason}", file=out)
            continue
        note = ""
        if name.startswith("torch"):
            note = f"lrcore Adam.step is {_speedup(result.speedup(name))} faster"
        elif name == "lrcore-_core.adam_step":
            note = f"Adam.step takes {_speedup(result.speedup('lrcore-Adam.step', over=name))} this"
        print(f"  {entry.title:<52} {format_seconds(entry.seconds):>9}   {note}", file=out)
    out.flush()


def _case_json(case: CaseResult) -> Dict[str, Any]:
    data = dataclasses.asdict(case)
    data["gigabytes_per_second"] = case.gigabytes_per_second
    data["roof_gigabytes_per_second"] = case.roof_gigabytes_per_second
    data["time_over_roof"] = case.time_over_roof
    data["thread_speedup"] = case.thread_speedup
    for name, entry in case.contenders.items():
        data["contenders"][name]["speedup"] = entry.speedup
    return data


def _opt_step_json(result: OptStepResult) -> Dict[str, Any]:
    data = dataclasses.asdict(result)
    for name in result.entries:
        data["entries"][name]["lrcore_Adam_step_speedup"] = result.speedup(name)
    return data


def _finite(value: Any) -> Any:
    """JSON has no inf/NaN: they become strings."""
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def to_json(system: Dict[str, Any], options: Dict[str, Any], cases: Sequence[CaseResult],
            opt_steps: Sequence[OptStepResult], failed: bool) -> Dict[str, Any]:
    """The whole run as plain data (see docs/benchmarks.md for the layout)."""
    data: Dict[str, Any] = _finite({
        "format": "lrcore-bench/1",
        "system": system,
        "options": options,
        "failed": failed,
        "cases": [_case_json(c) for c in cases],
        "opt_step": [_opt_step_json(r) for r in opt_steps],
    })
    return data
