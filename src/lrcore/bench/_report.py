"""What the benchmark prints and saves: the machine, the results table, JSON."""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
from typing import Any, Dict, List, Optional, Sequence, TextIO

import numpy as np

from .. import __version__, _runtime
from ._contenders import CONTENDERS, bitsandbytes_optim, deepspeed_adagrad, deepspeed_adam, torch_module
from ._mixed import LAYOUT_LABELS
from ._runner import NOISY_SPREAD, CaseResult, OptStepResult, noisy

__all__ = ["CaseTable", "format_seconds", "format_spread", "print_opt_step", "print_system", "system_info", "to_json"]

#: Column headings of the contenders in the table.
SHORT_NAMES = {
    "numpy": "numpy", "numpy-ref": "np-ref", "torch-loop": "t-loop", "torch-foreach": "t-foreach",
    "torch-fused": "t-fused", "deepspeed": "dspeed", "bnb": "bnb", "bnb-8bit": "bnb-8bit",
    "lrcore-float32": "f32",
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
    found = deepspeed_adam() is not None or deepspeed_adagrad() is not None
    deepspeed = sys.modules.get("deepspeed") if found else None
    bitsandbytes = sys.modules.get("bitsandbytes") if bitsandbytes_optim() is not None else None
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
        "bitsandbytes": getattr(bitsandbytes, "__version__", None),
    }


def print_system(info: Dict[str, Any], against: Sequence[str], out: TextIO, omp_note: Optional[str] = None) -> None:
    print(f"CPU      {info['cpu']} ({info['machine']}, {info['cpus_usable']} usable CPUs)", file=out)
    print(f"lrcore   {info['lrcore']}, ISA {info['isa']} (available: {', '.join(info['isas_available'])}), "
          f"{info['lrcore_threads_default']} threads by default", file=out)
    print(f"numpy    {info['numpy']}", file=out)
    torch = info["torch"]
    print(f"torch    {torch + ', ' + str(info['torch_threads_default']) + ' threads by default' if torch else 'not installed'}",
          file=out)
    print(f"deepspeed {info['deepspeed'] or 'not installed'}", file=out)
    print(f"bitsandbytes {info.get('bitsandbytes') or 'not installed'}", file=out)
    print(f"python   {info['python']} on {info['platform']}", file=out)
    if omp_note:
        print(f"OpenMP   {omp_note}", file=out)
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


def _plus_minus(out: TextIO) -> str:
    """"±" when the stream can encode it (an in-memory stream, without an encoding, can), else "+-"."""
    encoding = getattr(out, "encoding", None)
    if encoding is None:
        return "±"
    try:
        "±".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "+-"
    return "±"


def format_spread(spread: Optional[float], plus_minus: str = "±") -> str:
    """A relative IQR as "±3%" ("" when unknown)."""
    if spread is None:
        return ""
    percent = spread * 100
    return f"{plus_minus}{percent:.0f}%" if percent >= 1 or percent == 0 else f"{plus_minus}{percent:.1f}%"


def _ratio(value: Optional[float], is_noisy: bool = False) -> str:
    if value is None:
        return "-"
    return f"~{value:.2f}?" if is_noisy else f"{value:.2f}"


def _speedup(value: Optional[float], is_noisy: bool = False) -> str:
    if value is None:
        return "-"
    text = f"{value:.1f}x" if value < 100 else f"{value:.0f}x"
    return f"~{text}?" if is_noisy else text


#: The legend printed under every table that has a noisy ratio in it.
NOISY_LEGEND = (f"~2.1x? = noisy: the two cells' spreads (interquartile range of the rounds / median) add up to "
                f"more than {NOISY_SPREAD:.0%},\nso the ratio is not meaningful; rerun with more --seconds or on a "
                f"quieter machine.")


class CaseTable:
    """Prints the results table one row at a time, as cases finish."""

    def __init__(self, against: Sequence[str], out: TextIO, mixed: bool = False) -> None:
        self.against = list(against)
        self.out = out
        self.mixed = mixed  # 16-bit rows: a layout column, and "f32" (lrcore float32) first among the contenders
        self.columns = [("rule", 9, "<"), ("size", 16, "<"), ("thr", 3, ">")]
        if mixed:
            self.columns += [("layout", 13, "<"), ("B/el", 4, ">")]
        self.columns += [("lrcore", 15, ">"), ("GB/s", 6, ">"), ("/roof", 7, ">"), ("1->N", 6, ">")]
        self.columns += [(SHORT_NAMES.get(name, name), 9, ">") for name in self.against]
        self.pm = _plus_minus(out)
        self.rows: List[CaseResult] = []
        self.any_noisy = False

    def _line(self, cells: Sequence[str]) -> str:
        parts = [f"{cell:{align}{width}}" for cell, (_, width, align) in zip(cells, self.columns)]
        return "  ".join(parts).rstrip()

    def header(self) -> None:
        print(f"\nlrcore time: median per step {self.pm} the interquartile range of the rounds / median. GB/s: "
              "bytes a step must\nmove / time. /roof: lrcore time / the roof kernel's (same bytes, trivial "
              "arithmetic, same threads).\n1->N: lrcore 1-thread time / N-thread time. Other columns: how many "
              "times faster lrcore is (their\nmedian / lrcore's, interleaved in this run); ~Nx? marks a noisy "
              "ratio (spreads add up to more than "
              f"{NOISY_SPREAD:.0%}).\n", file=self.out)
        if self.mixed:
            print("16-bit rows: one per layout (B/el: bytes a step moves per element; the layout's roof moves the "
                  "same bytes).\nf32: how many times faster the layout is than lrcore float32 on the same values; "
                  "every ratio in a row\ncomes from one interleaved group of all the layouts, lrcore float32, the "
                  "roofs and the contenders.\n", file=self.out)
        print(self._line([name for name, _, _ in self.columns]), file=self.out)
        print(self._line(["-" * width for _, width, _ in self.columns]), file=self.out)

    def row(self, case: CaseResult) -> None:
        self.rows.append(case)
        head = [case.rule, case.label, str(case.threads)]
        if self.mixed:
            per_element = case.bytes_per_step // case.elements if case.elements else 0
            head += [LAYOUT_LABELS.get(case.layout or "", case.layout or "-"), str(per_element)]
        if case.status != "ok":
            print(self._line(head) + f"  FAILED: {case.reason}", file=self.out, flush=True)
            return
        roof_noisy = noisy(case.lrcore_spread, case.roof_spread)
        threads_noisy = case.thread_speedup is not None and noisy(case.lrcore_spread, case.one_thread_spread)
        cells = head + [f"{format_seconds(case.lrcore_seconds)} {format_spread(case.lrcore_spread, self.pm)}".strip(),
                        f"{case.gigabytes_per_second:.1f}",
                        _ratio(case.time_over_roof, roof_noisy), _ratio(case.thread_speedup, threads_noisy)]
        self.any_noisy = self.any_noisy or roof_noisy or threads_noisy
        notes: List[str] = []
        for name in self.against:
            entry = case.contenders.get(name)
            if entry is None or entry.status == "n/a":
                cells.append("-")
            elif entry.status == "ok":
                cells.append(_speedup(entry.speedup, entry.noisy))
                self.any_noisy = self.any_noisy or entry.noisy
            else:
                cells.append(entry.status.upper())
                notes.append(f"    {name}: {entry.reason}")
        print(self._line(cells), file=self.out, flush=True)
        for note in notes:
            print(note, file=self.out, flush=True)

    def legend(self) -> None:
        """After the last row: what the noisy mark means, when any ratio has it."""
        if self.any_noisy:
            print(NOISY_LEGEND, file=self.out, flush=True)

    def reprint(self, title: str) -> None:
        """The whole table again (header and every finished row), e.g. after an interrupted run."""
        rows, self.rows, self.any_noisy = self.rows, [], False
        print(f"\n{title}", file=self.out)
        self.header()
        for case in rows:
            self.row(case)
        self.legend()


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
            note = f"lrcore Adam.step is {_speedup(result.speedup(name), result.noisy(name))} faster"
        elif name == "lrcore-_core.adam_step":
            note = (f"Adam.step takes {_speedup(result.speedup('lrcore-Adam.step', over=name), result.noisy(name))}"
                    " this")
        time_cell = f"{format_seconds(entry.seconds)} {format_spread(entry.spread, _plus_minus(out))}".strip()
        print(f"  {entry.title:<54} {time_cell:>14}   {note}", file=out)
    out.flush()


def _case_json(case: CaseResult) -> Dict[str, Any]:
    data = dataclasses.asdict(case)
    data["gigabytes_per_second"] = case.gigabytes_per_second
    data["roof_gigabytes_per_second"] = case.roof_gigabytes_per_second
    data["time_over_roof"] = case.time_over_roof
    data["thread_speedup"] = case.thread_speedup
    data["time_over_roof_noisy"] = noisy(case.lrcore_spread, case.roof_spread) if case.status == "ok" else None
    for name, entry in case.contenders.items():
        data["contenders"][name]["speedup"] = entry.speedup
        data["contenders"][name]["noisy"] = entry.noisy
    return data


def _opt_step_json(result: OptStepResult) -> Dict[str, Any]:
    data = dataclasses.asdict(result)
    for name in result.entries:
        data["entries"][name]["lrcore_Adam_step_speedup"] = result.speedup(name)
        data["entries"][name]["noisy"] = result.noisy(name)
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
            opt_steps: Sequence[OptStepResult], failed: bool, interrupted: bool = False) -> Dict[str, Any]:
    """The whole run as plain data (see docs/benchmarks.md for the layout)."""
    data: Dict[str, Any] = _finite({
        "format": "lrcore-bench/1",
        "system": system,
        "options": options,
        "failed": failed,
        "interrupted": interrupted,
        "noisy_spread": NOISY_SPREAD,
        "cases": [_case_json(c) for c in cases],
        "opt_step": [_opt_step_json(r) for r in opt_steps],
    })
    return data
