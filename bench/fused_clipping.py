"""Times clipping fused into the step against the bare step and against torch.

    OMP_WAIT_POLICY=passive python bench/fused_clipping.py [--log2-size 24] [--rounds 30] [--threads 1]

Three ways to take one Adam step on 2^k float32 elements, interleaved round by
round (so load on the machine hits them alike), medians printed with their
ratios:

  bare      lrcore.Adam.step
  fused     lrcore.Adam(max_grad_norm=1.0, skip_nonfinite=True).step: one read
            pass for the global norm, the clip coefficient folded into the update
  torch     torch.nn.utils.clip_grad_norm_(max_norm=1.0) + torch.optim.Adam(fused=True).step

Before timing, one step of each is checked: the fused step must equal
lrcore.clip_grad_norm followed by a bare step bitwise, and torch's parameters
must agree with lrcore's to 1e-3 of the update (the bench's tolerance; torch
computes the clip coefficient in float32, lrcore in double). Parameters are restored
(untimed) before every timed step, so every step sees the same values.
Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # before torch is imported: its idle workers must not spin

import numpy as np

import lrcore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log2-size", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    n = 1 << args.log2_size
    lrcore.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    start = rng.standard_normal(n).astype(np.float32)
    grad = (rng.standard_normal(n) * 10).astype(np.float32)  # norm ~ 10 sqrt(n): clipping is active

    bare_p, fused_p, check_p = start.copy(), start.copy(), start.copy()
    bare = lrcore.Adam([bare_p], lr=1e-3)
    fused = lrcore.Adam([fused_p], lr=1e-3, max_grad_norm=1.0, skip_nonfinite=True)
    check = lrcore.Adam([check_p], lr=1e-3)
    torch_p = torch.nn.Parameter(torch.from_numpy(start.copy()))
    torch_opt = torch.optim.Adam([torch_p], lr=1e-3, fused=True)

    # Verification: fused == clip_grad_norm + bare step (bitwise); torch within 1e-6 of the update.
    fused.step([grad])
    clipped = grad.copy()
    lrcore.clip_grad_norm([clipped], 1.0)
    check.step([clipped])
    assert np.array_equal(fused_p, check_p), "fused clipping differs from clip_grad_norm + step"
    torch_p.grad = torch.from_numpy(grad.copy())
    torch.nn.utils.clip_grad_norm_([torch_p], 1.0)
    torch_opt.step()
    update = np.abs(fused_p - start).max()
    deviation = np.abs(torch_p.detach().numpy() - fused_p).max()
    # torch computes the clip coefficient in float32, lrcore in double: an ulp of the parameter apart.
    assert deviation <= 1e-3 * update, f"torch differs by {deviation} (update {update})"
    print(f"verified: fused == clip_grad_norm + step bitwise; torch within {deviation:.2e} (update {update:.2e})")

    def run_bare() -> None:
        bare.step([grad])

    def run_fused() -> None:
        fused.step([grad])

    def run_torch() -> None:
        torch_p.grad.copy_(torch.from_numpy(grad))  # clip_grad_norm_ scales the gradient in place
        torch.nn.utils.clip_grad_norm_([torch_p], 1.0)
        torch_opt.step()

    restores = {"bare": lambda: np.copyto(bare_p, start), "fused": lambda: np.copyto(fused_p, start),
                "torch": lambda: torch_p.data.copy_(torch.from_numpy(start))}
    cases = {"bare": run_bare, "fused": run_fused, "torch": run_torch}
    times = {name: [] for name in cases}
    for r in range(args.rounds):
        order = list(cases)[r % 3:] + list(cases)[:r % 3]
        for name in order:
            restores[name]()
            begin = time.perf_counter()
            cases[name]()
            times[name].append(time.perf_counter() - begin)
    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"n=2^{args.log2_size} threads={args.threads} isa={lrcore.isa()} rounds={args.rounds}")
    for name, value in med.items():
        print(f"  {name:6s} {value * 1e3:8.3f} ms")
    print(f"  fused / bare          {med['fused'] / med['bare']:.2f}  (the bytes say 32/28 = 1.14)")
    print(f"  torch / fused         {med['torch'] / med['fused']:.2f}  (how many times faster the fused step is)")


if __name__ == "__main__":
    main()
