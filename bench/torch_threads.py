"""How torch's OpenMP threads slow an lrcore.torch step, and which remedy works best.

    python bench/torch_threads.py [--log2-size 24] [--steps 10] [--threads 2]

A training loop on a 2**size-parameter torch model (one bias-free Linear layer,
batch 8): each iteration a torch forward/backward, then an
``lrcore.torch.Adam`` step. After any parallel torch operation, torch's
OpenMP workers (GNU libgomp in the CPU wheels) keep spinning on their cores
for a while, waiting for more work; an lrcore step that follows competes
with them for the cores.

OpenMP reads its environment once, when torch loads it, so each setting runs
in a process of its own: nothing set, ``OMP_WAIT_POLICY=passive`` (idle
workers sleep at once) and ``GOMP_SPINCOUNT=10000`` (they spin far less
long, then sleep). Within each process the variants run interleaved,
iteration by iteration, so that the machine's load hits them alike:

* ``after torch``: forward/backward, then the step (``--threads`` threads each);
* ``lrcore 1 thread``: the same, the step on the calling thread only;
* ``torch 1 thread``: the same, ``torch.set_num_threads(1)`` for the forward/backward;
* ``after a write``: the step right after numpy fills an array the size of the
  gradient, no torch operation: what the memory traffic of a preceding
  operation (dirty cache lines to write back) costs without any thread;
* ``alone``: the step after a 0.3 s pause with no torch operation, when
  nothing competes: the reference the others are divided by.

It also measures the spinning itself, which the machine's load does not
blur: the CPU time the process uses during a 0.3 s sleep right after a
forward/backward (the main thread sleeps, so that is torch's idle workers).

It prints median times and ratios to ``alone`` of the same process. The first
step of each process is checked against torch.optim.Adam before anything is
timed.

Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

SETTINGS = {
    "nothing set": {},
    "OMP_WAIT_POLICY=passive": {"OMP_WAIT_POLICY": "passive"},
    "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
}
VARIANTS = ("after torch", "lrcore 1 thread", "torch 1 thread", "after a write", "alone")


def run(log2_size: int, steps: int, threads: int) -> dict:
    """Every variant, interleaved, in this process (torch imported here, after the environment is set)."""
    import numpy as np
    import torch

    import lrcore
    import lrcore.torch

    side = 1 << (log2_size // 2)
    torch.manual_seed(0)
    model = torch.nn.Linear(side, (1 << log2_size) // side, bias=False)
    x = torch.randn(8, side)
    optimizer = lrcore.torch.Adam(model.parameters(), lr=1e-4)
    scratch = np.zeros(1 << log2_size, dtype=np.float32)

    def forward_backward() -> None:
        optimizer.zero_grad(set_to_none=False)
        model(x).square().mean().backward()

    torch.set_num_threads(threads)
    lrcore.set_num_threads(threads)
    # The result first: one step against torch.optim.Adam on a copy.
    forward_backward()
    expected = model.weight.detach().clone().requires_grad_()
    expected.grad = model.weight.grad.clone()
    torch.optim.Adam([expected], lr=1e-4, foreach=False).step()
    optimizer.step()
    if not torch.allclose(model.weight, expected, rtol=1e-6, atol=1e-7):
        raise SystemExit("the lrcore.torch step does not match torch.optim.Adam")

    times: dict = {v: {"step": [], "forward_backward": []} for v in VARIANTS}
    spin = []
    for _ in range(steps):
        torch.set_num_threads(threads)
        forward_backward()
        before = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(0.3)
        after = resource.getrusage(resource.RUSAGE_SELF)
        spin.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        for variant in VARIANTS:
            torch.set_num_threads(1 if variant == "torch 1 thread" else threads)
            lrcore.set_num_threads(1 if variant == "lrcore 1 thread" else threads)
            start = time.perf_counter()
            if variant == "alone":
                time.sleep(0.3)
            elif variant == "after a write":
                time.sleep(0.3)
                start = time.perf_counter()
                scratch.fill(float(len(times[variant]["step"])))
            else:
                forward_backward()
            middle = time.perf_counter()
            optimizer.step()
            end = time.perf_counter()
            times[variant]["step"].append(end - middle)
            times[variant]["forward_backward"].append(middle - start)
    results = {v: {k: statistics.median(t) for k, t in d.items()} for v, d in times.items()}
    results["spin"] = {"cpu": statistics.median(spin)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log2-size", type=int, default=24)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2, help="torch's and lrcore's threads (default 2)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one setting, in a subprocess
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run(args.log2_size, args.steps, args.threads)))
        return
    print(f"2**{args.log2_size} parameters, {args.threads} threads: lrcore.torch.Adam step after a torch "
          f"forward/backward (medians of {args.steps})")
    print(f"{'setting':<24} {'variant':<16} {'step ms':>8} {'/ alone':>8} {'fwd+bwd ms':>11}")
    for setting, variables in SETTINGS.items():
        environment = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
        environment.update(variables)
        output = subprocess.run([sys.executable, __file__, "--child", "--log2-size", str(args.log2_size),
                                 "--steps", str(args.steps), "--threads", str(args.threads)],
                                env=environment, capture_output=True, text=True, check=True).stdout
        results = json.loads(output.splitlines()[-1])
        spin = results.pop("spin")["cpu"]
        alone = results["alone"]["step"]
        for variant, r in results.items():
            forward = (f"{r['forward_backward'] * 1e3:>11.1f}" if variant not in ("alone", "after a write")
                       else f"{'-':>11}")
            print(f"{setting:<24} {variant:<16} {r['step'] * 1e3:>8.2f} {r['step'] / alone:>8.2f} {forward}")
        print(f"{setting:<24} CPU time of torch's idle workers in the 0.3 s after a forward/backward: "
              f"{spin * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
