"""Train a small torch model on handwritten digits with lrcore.torch.AdamW and a torch lr_scheduler.

A torch MLP (64 pixels -> ReLU hidden layer -> 10 classes) learns
scikit-learn's bundled 8x8 digits (1797 images, no download) with
``lrcore.torch.AdamW``, a drop-in for ``torch.optim.AdamW`` whose step is
lrcore's native kernel, under ``torch.optim.lr_scheduler.OneCycleLR`` (which
cycles the learning rate and AdamW's beta1). The same run with
``torch.optim.AdamW`` follows, from the same weights and batches, to show
that the two agree (to rounding) and what each optimizer step costs.

Run it::

    pip install "lrcore[torch,examples]"       # torch, scikit-learn
    python examples/torch_mlp.py               # a few seconds
    python examples/torch_mlp.py --quick       # fewer epochs

From Python (as the tests do)::

    results = main(["--quick", "--quiet"])
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

if __name__ == "__main__":
    # torch's OpenMP workers spin after each operation and slow the lrcore step that follows;
    # letting them sleep must be decided before torch starts them (docs/torch.md).
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np  # noqa: E402

try:
    import torch  # noqa: E402
except ImportError:
    sys.exit("this example needs torch: pip install 'lrcore[torch,examples]' (or pip install torch)")

import lrcore.torch  # noqa: E402


def load_data(seed: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The digits as float32 features in [0, 1]; a quarter of each class held out for testing."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("this example needs scikit-learn: pip install 'lrcore[examples]' (or pip install scikit-learn)")
    digits = load_digits()
    features = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    labels = torch.tensor(digits.target, dtype=torch.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(digits.target == digit))
        test[members[: len(members) // 4]] = True
    test_mask = torch.from_numpy(test)
    return features[~test_mask], labels[~test_mask], features[test_mask], labels[test_mask]


def make_model(hidden: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))


@dataclass
class RunResult:
    name: str
    train_loss: List[float] = field(default_factory=list)  # mean loss per epoch
    test_accuracy: float = 0.0
    step_seconds: float = 0.0  # median time of optimizer.step()
    model: Optional[torch.nn.Module] = None


def train(name: str, make_optimizer: Callable[..., torch.optim.Optimizer], data: Tuple[torch.Tensor, ...],
          args: argparse.Namespace) -> RunResult:
    x_train, y_train, x_test, y_test = data
    model = make_model(args.hidden, args.seed)
    optimizer = make_optimizer(model.named_parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = len(y_train) // args.batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                                    steps_per_epoch=steps_per_epoch)
    generator = torch.Generator().manual_seed(args.seed + 1)
    result = RunResult(name, model=model)
    step_times = []
    for _ in range(args.epochs):
        order = torch.randperm(len(y_train), generator=generator)
        total = 0.0
        for b in range(steps_per_epoch):
            rows = order[b * args.batch_size:(b + 1) * args.batch_size]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x_train[rows]), y_train[rows])
            loss.backward()
            start = time.perf_counter()
            optimizer.step()
            step_times.append(time.perf_counter() - start)
            scheduler.step()
            total += loss.item()
        result.train_loss.append(total / steps_per_epoch)
    with torch.no_grad():
        result.test_accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    result.step_seconds = float(np.median(step_times))
    return result


OPTIMIZERS: Dict[str, Callable[..., torch.optim.Optimizer]] = {
    "lrcore.torch.AdamW": lrcore.torch.AdamW,
    "torch.optim.AdamW": lambda params, **kw: torch.optim.AdamW(params, foreach=False, **kw),
}


def main(argv: Optional[Sequence[str]] = None) -> List[RunResult]:
    """Trains once per optimizer; returns their results (lrcore.torch's first)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2, help="OneCycleLR's max_lr (default 0.01)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch and lrcore threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="6 epochs, 64 hidden units")
    parser.add_argument("--quiet", action="store_true", help="print only the final table")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.hidden = min(args.epochs, 6), 64
    if min(args.epochs, args.hidden, args.batch_size, args.threads) < 1:
        parser.error("--epochs, --hidden, --batch-size and --threads must be positive")
    say = (lambda *a, **k: None) if args.quiet else print
    torch.set_num_threads(args.threads)
    lrcore.set_num_threads(args.threads)

    data = load_data(args.seed)
    say(f"digits: {len(data[1])} training, {len(data[3])} test images; MLP [64, {args.hidden}, 10], "
        f"{args.epochs} epochs, OneCycleLR(max_lr={args.lr})")
    results = [train(name, make, data, args) for name, make in OPTIMIZERS.items()]
    difference = max((a - b).abs().max().item() for a, b in
                     zip(results[0].model.parameters(), results[1].model.parameters()))  # type: ignore[union-attr]
    print(f"{'optimizer':<20} {'first loss':>10} {'last loss':>10} {'test acc':>9} {'step (us)':>10}")
    for r in results:
        print(f"{r.name:<20} {r.train_loss[0]:>10.4f} {r.train_loss[-1]:>10.4f} {r.test_accuracy:>9.3f} "
              f"{r.step_seconds * 1e6:>10.1f}")
    print(f"largest parameter difference between the two: {difference:.2e}")
    return results


if __name__ == "__main__":
    main()
