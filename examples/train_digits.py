"""Train a small neural network on handwritten digits with lrcore, comparing optimizers and schedules.

A multi-layer perceptron (64 pixels -> hidden ReLU layers -> 10 classes,
softmax cross-entropy) written in numpy, forward and backward, learns
scikit-learn's bundled 8x8 digits (1797 images, no download). For each
optimizer the learning-rate range test (``lrcore.find_lr``) runs first and
its suggestion sets the learning rate of the schedule; then each
optimizer/schedule pair trains from the same initial weights, and a table of
final loss and test accuracy is printed and the loss curves are saved as an
image (when matplotlib is installed).

Then one pair trains again in mixed precision: the network's weights and
gradients are bfloat16 (the forward and backward passes widen them to
float32), and the optimizer keeps a float32 master copy of each weight
(``master_weights=True``) with float32 state, stepping the masters exactly as
in float32 and writing them back rounded to bfloat16. It uses the float32
run's learning rate, schedule and batches, so the two rows of the table differ
only in precision.

Run it::

    pip install "lrcore[examples]"      # scikit-learn and matplotlib
    python examples/train_digits.py              # 3-10 s on 2 cores
    python examples/train_digits.py --quick      # a few seconds
    python examples/train_digits.py --epochs 60 --hidden 256 128 --plot digits.png
    python examples/train_digits.py --bfloat16 none      # no mixed-precision run

From Python (as the tests do)::

    results = main(["--quick", "--quiet", "--plot", "none"])
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import ml_dtypes
import numpy as np

import lrcore
from lrcore.lr_finder import LRFinderResult, find_lr
from lrcore.schedules import Constant, CosineAnnealing, OneCycle, Warmup


# --------------------------------------------------------------------------------------- data
def load_data(seed: int, test_fraction: float = 0.25) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits as float32 features scaled to [0, 1], split into train and test sets per class."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("this example needs scikit-learn: pip install 'lrcore[examples]' (or pip install scikit-learn)")
    digits = load_digits()
    features = (digits.data / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(labels.size, dtype=bool)
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        test[members[: int(round(test_fraction * members.size))]] = True
    return features[~test], labels[~test], features[test], labels[test]


# -------------------------------------------------------------------------------------- model
BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


class MLP:
    """Fully connected ReLU network with a softmax cross-entropy loss; parameters are float32 arrays
    (or bfloat16, see :meth:`to_bfloat16`: the passes then compute in float32 from their widened values
    and return bfloat16 gradients)."""

    def __init__(self, sizes: Sequence[int], seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.params: List[np.ndarray] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            # He initialisation suits ReLU layers.
            self.params.append((rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(np.float32))
            self.params.append(np.zeros(fan_out, dtype=np.float32))

    def copy(self) -> "MLP":
        clone = MLP.__new__(MLP)
        clone.params = [p.copy() for p in self.params]
        return clone

    def to_bfloat16(self) -> "MLP":
        """A copy whose parameters are rounded to bfloat16 (to nearest even)."""
        clone = MLP.__new__(MLP)
        clone.params = [p.astype(BFLOAT16) for p in self.params]
        return clone

    def _compute_params(self) -> List[np.ndarray]:
        """The parameters as the passes compute with them: 16-bit ones widened to float32 (exactly)."""
        return [p.astype(np.float32) if p.dtype.itemsize == 2 else p for p in self.params]

    def logits(self, x: np.ndarray) -> np.ndarray:
        params = self._compute_params()
        h = x
        layers = len(params) // 2
        for k in range(layers):
            h = h @ params[2 * k] + params[2 * k + 1]
            if k < layers - 1:
                h = np.maximum(h, 0.0)
        return h

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> Tuple[float, List[np.ndarray]]:
        """Mean cross-entropy of the batch and its gradient w.r.t. every parameter (backpropagation);
        the gradients of bfloat16 parameters are rounded to bfloat16."""
        params = self._compute_params()
        activations = [x]
        layers = len(params) // 2
        h = x
        for k in range(layers):
            h = h @ params[2 * k] + params[2 * k + 1]
            if k < layers - 1:
                h = np.maximum(h, 0.0)
            activations.append(h)
        loss, delta = _softmax_cross_entropy(h, y)
        grads: List[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(params)
        for k in reversed(range(layers)):
            grads[2 * k] = np.ascontiguousarray(activations[k].T @ delta, dtype=np.float32)
            grads[2 * k + 1] = np.ascontiguousarray(delta.sum(axis=0), dtype=np.float32)
            if k > 0:
                delta = (delta @ params[2 * k].T) * (activations[k] > 0)
        for k, param in enumerate(self.params):
            if param.dtype.itemsize == 2:
                grads[k] = grads[k].astype(param.dtype)
        return loss, grads

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> Tuple[float, float]:
        """(mean cross-entropy, accuracy) on a data set."""
        logits = self.logits(x)
        loss, _ = _softmax_cross_entropy(logits, y)
        return loss, float(np.mean(np.argmax(logits, axis=1) == y))


def _softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> Tuple[float, np.ndarray]:
    """Mean cross-entropy and its gradient w.r.t. the logits: (softmax - onehot) / batch."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_norm
    rows = np.arange(y.size)
    loss = -float(np.mean(log_probs[rows, y]))
    delta = np.exp(log_probs)
    delta[rows, y] -= 1.0
    return loss, (delta / y.size).astype(np.float32)


class Batches:
    """An endless stream of shuffled mini-batches, reshuffled every epoch."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(y.size)
        self.position = 0

    @property
    def per_epoch(self) -> int:
        return self.y.size // self.batch_size

    def next(self) -> Tuple[np.ndarray, np.ndarray]:
        if self.position + self.batch_size > self.y.size:
            self.order = self.rng.permutation(self.y.size)
            self.position = 0
        index = self.order[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        return self.x[index], self.y[index]


# ----------------------------------------------------------------------------------- configs
@dataclass
class Config:
    """An optimizer and a learning-rate schedule built from the range test's suggestion."""

    name: str
    #: (params, lr, **mixed-precision options) -> optimizer
    make_optimizer: Callable[..., lrcore.Optimizer]
    make_schedule: Callable[[float, int], object]
    #: The peak learning rate is the range test's suggestion times this.
    lr_factor: float = 1.0


CONFIGS = [
    Config("SGD momentum + cosine",
           lambda params, lr, **mixed: lrcore.SGD(params, lr=lr, momentum=0.9, nesterov=True, **mixed),
           lambda lr, total: CosineAnnealing(lr, T_max=total)),
    Config("Adam + OneCycle",
           lambda params, lr, **mixed: lrcore.Adam(params, lr=lr, **mixed),
           lambda lr, total: OneCycle(lr, total_steps=total), lr_factor=2.0),
    Config("AdamW + warmup/cosine",
           lambda params, lr, **mixed: lrcore.AdamW(params, lr=lr, weight_decay=1e-2, **mixed),
           lambda lr, total: Warmup(CosineAnnealing(lr, T_max=total - total // 10), warmup_steps=total // 10)),
    Config("RMSprop constant",
           lambda params, lr, **mixed: lrcore.RMSprop(params, lr=lr, **mixed),
           lambda lr, total: Constant(lr), lr_factor=0.5),
]

#: The pair trained again with bfloat16 weights and gradients (float32 masters and state).
BFLOAT16_CONFIG = "AdamW + warmup/cosine"
BFLOAT16_SUFFIX = " (bf16)"


@dataclass
class RunResult:
    """One optimizer/schedule pair: its range test, chosen learning rate, curves and final scores."""

    name: str
    suggested_lr: Optional[float]
    lr: float
    schedule: str
    train_loss: List[float] = field(default_factory=list)
    test_accuracy_curve: List[float] = field(default_factory=list)
    final_train_loss: float = float("nan")
    test_loss: float = float("nan")
    test_accuracy: float = float("nan")
    seconds: float = 0.0
    range_test: Optional[LRFinderResult] = None
    #: "float32", or "bfloat16" for the mixed-precision run (bfloat16 weights, float32 masters and state)
    precision: str = "float32"
    #: the trained parameters, in their dtype, and the optimizer that trained them
    params: List[np.ndarray] = field(default_factory=list)
    optimizer: Optional[lrcore.Optimizer] = None


# -------------------------------------------------------------------------------------- main
def main(argv: Optional[Sequence[str]] = None) -> List[RunResult]:
    """Runs the comparison; returns one :class:`RunResult` per optimizer/schedule pair."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 64], help="hidden layer sizes")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="a smaller run: 12 epochs, one hidden layer of 64")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default="train_digits.png",
                        help="where to save the loss curves ('none' to skip; default train_digits.png)")
    parser.add_argument("--quiet", action="store_true", help="print only the final table")
    parser.add_argument("--bfloat16", default=BFLOAT16_CONFIG, metavar="NAME",
                        help=f"the optimizer/schedule pair to train again with bfloat16 weights and float32 master "
                             f"copies (default {BFLOAT16_CONFIG!r}; 'none' to skip)")
    args = parser.parse_args(argv)
    names = [config.name for config in CONFIGS]
    if args.bfloat16.lower() != "none" and args.bfloat16 not in names:
        parser.error(f"--bfloat16 must name one of {names} or be 'none'")
    if args.quick:
        args.epochs, args.hidden = min(args.epochs, 12), [64]
    if args.epochs < 1 or args.batch_size < 1 or any(h < 1 for h in args.hidden):
        parser.error("--epochs, --batch-size and --hidden must be positive")
    say = (lambda *a, **k: None) if args.quiet else print

    x_train, y_train, x_test, y_test = load_data(args.seed)
    initial = MLP([x_train.shape[1], *args.hidden, 10], seed=args.seed)
    steps_per_epoch = y_train.size // args.batch_size
    total_steps = args.epochs * steps_per_epoch
    say(f"digits: {y_train.size} training and {y_test.size} test images; MLP {[64, *args.hidden, 10]}, "
        f"{args.epochs} epochs of {steps_per_epoch} steps (batch {args.batch_size})")

    results = []
    for config in CONFIGS:
        model = initial.copy()
        batches = Batches(x_train, y_train, args.batch_size, seed=args.seed + 1)
        # The optimizer is built once: the range test restores its state and the weights exactly.
        optimizer = config.make_optimizer(model.params, 1e-3)

        def loss_and_grads() -> Tuple[float, List[np.ndarray]]:
            return model.loss_and_grads(*batches.next())

        range_test = find_lr(optimizer, loss_and_grads, start_lr=1e-5, end_lr=10.0,
                               num_steps=min(100, max(40, total_steps // 3)))
        suggested = range_test.suggested_lr
        lr = (suggested if suggested is not None else 1e-3) * config.lr_factor
        schedule = config.make_schedule(lr, total_steps)
        for group in optimizer.param_groups:
            group["lr"] = schedule
        say(f"\n{config.name}: range test suggests lr {_format(suggested)} "
            f"({len(range_test)} steps{', stopped at divergence' if range_test.diverged else ''}); "
            f"training with {schedule!r}")

        result = RunResult(config.name, suggested, lr, repr(schedule), range_test=range_test)
        train(result, model, optimizer, Batches(x_train, y_train, args.batch_size, seed=args.seed + 2),
              (x_train, y_train, x_test, y_test), args.epochs, say)
        results.append(result)

        if config.name == args.bfloat16:
            # The same pair in mixed precision, from the same initial weights (rounded to bfloat16), with the
            # learning rate and schedule the float32 run chose and the same batches.
            model = initial.to_bfloat16()
            optimizer = config.make_optimizer(model.params, lr, master_weights=True)
            for group in optimizer.param_groups:
                group["lr"] = schedule
            say(f"\n{config.name}, bfloat16 weights and gradients with float32 master weights and state: "
                f"training with {schedule!r}")
            twin = RunResult(config.name + BFLOAT16_SUFFIX, suggested, lr, repr(schedule), precision="bfloat16")
            train(twin, model, optimizer, Batches(x_train, y_train, args.batch_size, seed=args.seed + 2),
                  (x_train, y_train, x_test, y_test), args.epochs, say)
            results.append(twin)

    print(_table(results))
    if args.plot.lower() != "none":
        _save_plot(results, args.plot, say)
    return results


def train(result: RunResult, model: MLP, optimizer: lrcore.Optimizer, batches: Batches,
          data: Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], epochs: int,
          say: Callable[..., None]) -> None:
    """Trains `model` for `epochs` epochs, recording the curves and final scores in `result`."""
    x_train, y_train, x_test, y_test = data
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        for _ in range(batches.per_epoch):
            _, grads = model.loss_and_grads(*batches.next())
            optimizer.step(grads)
        train_loss, _ = model.evaluate(x_train, y_train)
        _, accuracy = model.evaluate(x_test, y_test)
        result.train_loss.append(train_loss)
        result.test_accuracy_curve.append(accuracy)
        if epoch == epochs or epoch % max(1, epochs // 6) == 0:
            say(f"  epoch {epoch:3d}/{epochs}  train loss {train_loss:.4f}  test accuracy {accuracy:.3f}  "
                f"lr {optimizer.get_last_lr()[0]:.2e}")
    result.seconds = time.perf_counter() - start
    result.final_train_loss = result.train_loss[-1]
    result.test_loss, result.test_accuracy = model.evaluate(x_test, y_test)
    result.params = model.params
    result.optimizer = optimizer


def _format(lr: Optional[float]) -> str:
    return "none" if lr is None else f"{lr:.3g}"


def _table(results: Sequence[RunResult]) -> str:
    header = f"{'optimizer + schedule':<30} {'range test lr':>13} {'peak lr':>9} {'train loss':>10} " \
             f"{'test loss':>9} {'test acc':>8} {'time':>6}"
    lines = ["", header, "-" * len(header)]
    for r in results:
        lines.append(f"{r.name:<30} {_format(r.suggested_lr):>13} {r.lr:>9.3g} {r.final_train_loss:>10.4f} "
                     f"{r.test_loss:>9.4f} {r.test_accuracy:>8.3f} {r.seconds:>5.1f}s")
    return "\n".join(lines)


def _save_plot(results: Sequence[RunResult], path: str, say: Callable[..., None]) -> None:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        say("(matplotlib is not installed: no plot; pip install 'lrcore[plot]')")
        return
    figure = Figure(figsize=(11, 3.8), layout="constrained")
    finder, losses, accuracy = figure.subplots(1, 3)
    for index, r in enumerate(results):
        color = f"C{index}"
        epochs = np.arange(1, len(r.train_loss) + 1)
        style = "--" if r.precision == "bfloat16" else "-"
        losses.plot(epochs, r.train_loss, style, color=color, label=r.name)
        accuracy.plot(epochs, r.test_accuracy_curve, style, color=color, label=r.name)
        if r.range_test is not None and len(r.range_test) > 0:
            test = r.range_test
            count = max(2, len(test) - test.skip_end)
            finder.plot(test.lrs[:count], test.smoothed_losses[:count], color=color, label=r.name)
            if test.suggested_index is not None and test.suggested_index < count:
                finder.plot(test.lrs[test.suggested_index], test.smoothed_losses[test.suggested_index], "o",
                            color=color)
    finder.set_xscale("log")
    finder.set_xlabel("learning rate")
    finder.set_ylabel("smoothed loss")
    finder.set_title("range test (o: suggestion)", fontsize="medium")
    losses.set_yscale("log")
    losses.set_xlabel("epoch")
    losses.set_ylabel("training loss")
    losses.set_title("training loss", fontsize="medium")
    accuracy.set_xlabel("epoch")
    accuracy.set_ylabel("test accuracy")
    accuracy.set_ylim(0.8, 1.0)
    accuracy.set_title("test accuracy", fontsize="medium")
    accuracy.legend(fontsize="small", loc="lower right")
    for ax in (finder, losses, accuracy):
        ax.grid(True, alpha=0.3)
    figure.savefig(path, dpi=80)
    say(f"\nsaved the curves to {path}")


if __name__ == "__main__":
    main()
