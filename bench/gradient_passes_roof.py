"""Times the whole-gradient passes against the benchmark's memory roof.

    python bench/gradient_passes_roof.py [--log2-size 24] [--repeats 20]

For each dtype (float32, float64) and thread count (1, 2) it times
all_finite, global_norm for norm_type 2, 1, inf and 3, and the clip scaling,
interleaved with lrcore._core.bench.roof_stream run over arrays holding the
same number of bytes, and prints median times and time / roof.

The roof kernel reads one array and reads and writes another (12 bytes per
float32 element), so "the same bytes" means arrays of a third of the
gradient's length for a read-only pass (4 B/element) and two thirds for the
scaling (read + write, 8 B/element). Scaling is timed as
clip_grad_norm(max_norm tiny) minus global_norm(2): the gradient is restored
(untimed) before every clip so each call scales the same values.

Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

import lrcore
from lrcore import _core


def roof_for(nbytes: int, dtype: np.dtype) -> "callable":
    n = nbytes // (3 * np.dtype(dtype).itemsize)
    a = np.full(n, 1e-8, dtype)
    b = np.zeros(n, dtype)
    return lambda: _core.bench.roof_stream([[a]], [[b]])


def median_times(functions: dict, repeats: int, before: dict | None = None) -> dict:
    times = {name: [] for name in functions}
    for _ in range(repeats):  # interleaved: machine noise hits every contender alike
        for name, fn in functions.items():
            if before and name in before:
                before[name]()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log2-size", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    n = 1 << args.log2_size
    print(f"isa={lrcore.isa()}  n=2^{args.log2_size}  repeats={args.repeats}")
    print(f"{'dtype':8} {'thr':>3} {'pass':16} {'ms':>8} {'roof ms':>8} {'ratio':>6}")
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        g = rng.standard_normal(n).astype(dtype)
        saved = g.copy()
        read_bytes = g.nbytes
        for threads in (1, 2):
            lrcore.set_num_threads(threads)
            functions = {
                "roof(read)": roof_for(read_bytes, dtype),
                "roof(rw)": roof_for(2 * read_bytes, dtype),
                "all_finite": lambda: lrcore.all_finite([g]),
                "global_norm(2)": lambda: lrcore.global_norm([g], 2.0),
                "global_norm(1)": lambda: lrcore.global_norm([g], 1.0),
                "global_norm(inf)": lambda: lrcore.global_norm([g], math.inf),
                "global_norm(3)": lambda: lrcore.global_norm([g], 3.0),
                "clip(2)": lambda: lrcore.clip_grad_norm([g], 1e-3),
            }
            restore = {"clip(2)": lambda: np.copyto(g, saved)}
            med = median_times(functions, args.repeats, restore)
            np.copyto(g, saved)
            med["scale"] = med["clip(2)"] - med["global_norm(2)"]
            for name in ("all_finite", "global_norm(2)", "global_norm(1)", "global_norm(inf)",
                         "global_norm(3)", "scale"):
                roof = med["roof(rw)"] if name == "scale" else med["roof(read)"]
                print(f"{np.dtype(dtype).name:8} {threads:>3} {name:16} {med[name] * 1e3:8.3f} "
                      f"{roof * 1e3:8.3f} {med[name] / roof:6.2f}")


if __name__ == "__main__":
    main()
