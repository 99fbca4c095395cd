"""Times the whole-gradient passes against the benchmark's memory roof.

    python bench/gradient_passes_roof.py [--log2-size 24] [--repeats 20]

For each dtype (float32, float64) and thread count (1, 2) it times
all_finite, global_norm for norm_type 2, 1, inf and 3, and the clip scaling,
interleaved with lrcore._core.bench.roof_stream run over arrays holding the
same number of bytes, and prints median times and time / roof.

The roofs run over the very same gradient array: lrcore._core.bench.roof_read
reads every element once (the bytes of all_finite and of a norm: 4 B/element
for float32) and roof_update reads and writes every element in place (the
bytes of the scaling: 8 B/element). Both use the gradient passes' chunking,
thread pool and instruction set. Scaling is timed as
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
        for threads in (1, 2):
            lrcore.set_num_threads(threads)
            functions = {
                "roof(read)": lambda: _core.bench.roof_read([g]),
                "roof(rw)": lambda: _core.bench.roof_update([g], 0.0),
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
