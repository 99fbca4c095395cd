"""Every update rule described once, as data.

A rule's native half lives in the compiled module (``lrcore._core.rules``, from
cpp/src/rules.hpp): the hyperparameters the kernel takes with their valid
ranges, its state arrays and when each is needed, whether tensors carry step
numbers, and the step entry point. The description here adds what Python
users see: the class name, torch's argument names and defaults (``betas`` is
the pair ``beta1, beta2``), documentation, hyperparameters a variant fixes
(AdamW's decoupled weight decay), options that only set initial state, and
the order of the functional layer's arguments.

From these descriptions :mod:`lrcore.optim` derives the optimizer classes,
:mod:`lrcore.functional` its functions, the benchmark and the tests their rule
lists, and :func:`documentation_table` the docs table. A mismatch with the
native half is an error at import.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, Mapping, Tuple

import numpy as np

from . import _core

__all__ = ["RULES", "GroupScalar", "Hyperparameter", "RuleDescription", "ScalarState", "StateArray", "documentation_table"]


@dataclass(frozen=True)
class Hyperparameter:
    """One argument of an optimizer class.

    Attributes:
        name: the argument's name (torch's).
        default: its default value.
        doc: what it is, in a few words.
        native: the native hyperparameters it sets: one name, or two for a pair (``betas``).
        kind: ``"number"`` (a number or a schedule; a pair of them for two native
            names), ``"flag"`` (a bool) or ``"option"`` (a number that only sets
            initial state, e.g. ``initial_accumulator_value``).
        valid: the range the native rule enforces, in words.
    """

    name: str
    default: Any
    doc: str
    native: Tuple[str, ...] = ()
    kind: str = ""
    valid: str = ""


@dataclass(frozen=True)
class StateArray:
    """One state array a rule keeps per parameter.

    Attributes:
        name: its key in ``state_dict()["state"][i]`` (torch's name).
        list_name: the functional layer's argument for the list of them.
        needed_when: the configuration that needs it, in words; ``""`` when always.
        initial: ``"zero"``, ``"gradient"`` (the kernel starts it from the
            gradient on its first use), ``"param"`` (the kernel starts it as a
            copy of the parameter on its first use), the name of the option it is
            filled with, or, for a state the kernel initializes, the hyperparameter
            it starts at (Rprop's ``step_size`` starts at ``lr``).
        kernel_initialized: the kernel writes it on its first use instead of
            reading it: it starts as ``None`` and is created by the first step
            that updates its tensor, as torch creates its state.
        shape: ``"param"`` (shaped like its parameter), ``"rows"`` (the
            parameter's shape with its last dimension 1: one value per row of the
            last two dimensions) or ``"columns"`` (with its second-to-last dimension 1).
        dims: which parameters have it: ``"any"``, ``"matrix"`` (2 or more
            dimensions) or ``"vector"`` (0 or 1); the others have ``None``.
        per_row: one value per row of the parameter (shape ``param.shape[:1]``)
            instead of one per element (row-wise AdaGrad's accumulator).
    """

    name: str
    list_name: str
    needed_when: str
    initial: str
    per_row: bool = False
    shape: str = "param"
    dims: str = "any"
    kernel_initialized: bool = False

    @property
    def always(self) -> bool:
        return not self.needed_when

    def exists_for(self, param_shape: Tuple[int, ...]) -> bool:
        """Whether a parameter of this shape has this state array."""
        if self.dims == "any":
            return True
        return (len(param_shape) >= 2) == (self.dims == "matrix")

    def shape_for(self, param_shape: Tuple[int, ...]) -> Tuple[int, ...]:
        """The array's shape for a parameter of shape ``param_shape`` (torch's layout)."""
        if self.per_row:
            return tuple(param_shape[:1])
        shape = list(param_shape)
        if self.shape == "rows" and len(shape) >= 2:
            shape[-1] = 1
        elif self.shape == "columns" and len(shape) >= 2:
            shape[-2] = 1
        return tuple(shape)

    @property
    def applies_to(self) -> str:
        """Which parameters have it, in words ("" for all)."""
        return {"any": "", "matrix": "parameters of 2 or more dimensions",
                "vector": "parameters of 0 or 1 dimensions"}[self.dims]


@dataclass(frozen=True)
class GroupScalar:
    """One scalar a rule keeps per parameter group (the schedule-free step count, weight sum, mode).

    Attributes:
        name: its key in ``state_dict()["group_states"][g]``.
        kind: ``"count"`` (an int), ``"number"`` (a float) or ``"flag"`` (a bool).
        initial: its value in a new group.
    """

    name: str
    kind: str
    initial: float

    def export(self, value: float) -> Any:
        """The stored float as state_dict shows it: an int, a float or a bool."""
        if self.kind == "count":
            return int(value)
        if self.kind == "flag":
            return bool(value)
        return float(value)


@dataclass(frozen=True)
class ScalarState:
    """One number a rule keeps per parameter (torch keeps it as a 0-d tensor), e.g. NAdam's ``mu_product``.

    It is held as a 0-d float64 numpy array, in ``state_dict()["state"][i]``
    under ``name`` and in the functional layer's list ``list_name`` (``None``
    entries are created at ``initial``). The native step reads it for its
    per-step constants and writes its next value after the update.

    Attributes:
        name: its key in ``state_dict()["state"][i]`` (torch's name).
        list_name: the functional layer's argument for the list of them.
        initial: its value before the first step.
    """

    name: str
    list_name: str
    initial: float

    def new(self) -> np.ndarray:
        """A fresh 0-d float64 array holding the initial value."""
        return np.array(self.initial, dtype=np.float64)


@dataclass(frozen=True)
class RuleDescription:
    """An update rule: everything the optimizer class and the functional layer derive from.

    Attributes:
        name: the rule's name (``lrcore.functional.<name>``, the bench's ``--rules`` token).
        class_name: the optimizer class in :mod:`lrcore`.
        native: the compiled rule object, whose ``step`` is the only entry point.
        summary: first line of the docstrings.
        formula: the update, stated once; the functional function's docstring shows it.
        hyperparameters: the class's arguments, in torch's order.
        fixed: native hyperparameters this rule sets itself.
        initial: state arrays filled with an option's value instead of zero (state name -> option name),
            or, for a state the kernel initializes, the hyperparameter the kernel starts it at
            (instead of the gradient).
        functional_arguments: the functional layer's positional arguments after ``params, grads``.
        states: the state arrays (from the native description).
        scalars: the per-tensor scalar states (from the native description).
        has_step: whether the kernel uses per-tensor step numbers.
        dense_gradients: whether the rule takes numpy gradients (SparseAdam does not).
        sparse_gradients: whether it takes row-sparse gradients (:class:`lrcore.SparseRows`).
        group_scalars: the per-group state (from the native description); a
            step takes and advances it (the functional layer's ``group_state``).
        has_modes: whether the rule switches its parameters between a train
            and an eval point (the classes then have ``train()`` and ``eval()``).
    """

    name: str
    class_name: str
    native: _core._Rule  # a name of the compiled module's stub only (lrcore/_core.pyi)
    summary: str
    formula: str
    hyperparameters: Tuple[Hyperparameter, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    initial: Mapping[str, str] = field(default_factory=dict)
    functional_arguments: Tuple[str, ...] = ()
    states: Tuple[StateArray, ...] = ()
    scalars: Tuple[ScalarState, ...] = ()
    has_step: bool = False
    dense_gradients: bool = True
    sparse_gradients: bool = False
    group_scalars: Tuple[GroupScalar, ...] = ()
    has_modes: bool = False

    @property
    def defaults(self) -> Dict[str, Any]:
        return {h.name: h.default for h in self.hyperparameters}

    def hyperparameter(self, name: str) -> Hyperparameter:
        for h in self.hyperparameters:
            if h.name == name:
                return h
        raise KeyError(name)


def _number(name: str, default: Any, doc: str) -> Hyperparameter:
    return Hyperparameter(name, default, doc, native=(name,), kind="number")


def _flag(name: str, default: bool, doc: str) -> Hyperparameter:
    return Hyperparameter(name, default, doc, native=(name,), kind="flag")


def _pair(name: str, native: Tuple[str, str], default: Tuple[Any, Any], doc: str) -> Hyperparameter:
    return Hyperparameter(name, default, doc, native=native, kind="number")


def _option(name: str, default: Any, doc: str) -> Hyperparameter:
    return Hyperparameter(name, default, doc, kind="option", valid="a finite number >= 0")


_MAXIMIZE = _flag("maximize", False, "ascend the objective instead of descending it")


def _complete(rule: RuleDescription) -> RuleDescription:
    """Checks a description against its native half and fills in what comes from there."""
    native_kinds = {name: (kind, valid) for name, kind, valid in rule.native.hyperparameters}
    covered: Dict[str, str] = {}
    hyperparameters = []
    for h in rule.hyperparameters:
        for native in h.native:
            if native not in native_kinds:
                raise RuntimeError(f"{rule.class_name}.{h.name}: the native rule has no hyperparameter {native!r}")
            if native in covered:
                raise RuntimeError(f"{rule.class_name}: {native!r} is set by both {covered[native]} and {h.name}")
            covered[native] = h.name
        if h.native:
            kind, valid = native_kinds[h.native[0]]
            if kind != h.kind:
                raise RuntimeError(f"{rule.class_name}.{h.name} is a {h.kind} but the native rule takes a {kind}")
            ranges = [native_kinds[native][1] for native in h.native]
            if len(set(ranges)) > 1:  # a pair whose elements have different ranges (Rprop's etas, Adafactor's eps)
                valid = "; ".join(f"{native} {text}" for native, text in zip(h.native, ranges))
            h = replace(h, valid=valid)
        hyperparameters.append(h)
    for native in rule.fixed:
        if native in covered or native not in native_kinds:
            raise RuntimeError(f"{rule.class_name}: fixed hyperparameter {native!r} is unknown or also an argument")
        covered[native] = "fixed"
    missing = set(native_kinds) - set(covered)
    if missing:
        raise RuntimeError(f"{rule.class_name}: native hyperparameters {sorted(missing)} have no argument")
    row_states = set(rule.native.row_states)
    states = tuple(
        StateArray(name, list_name, needed_when,
                   rule.initial.get(name, initialized_from if kernel_initialized else "zero"),
                   shape=shape, dims=dims, kernel_initialized=kernel_initialized, per_row=name in row_states)
        for name, list_name, needed_when, kernel_initialized, initialized_from, shape, dims in rule.native.states
    )
    scalars = tuple(ScalarState(name, list_name, float(initial)) for name, list_name, initial in rule.native.scalars)
    group_scalars = tuple(GroupScalar(name, kind, initial) for name, kind, initial in rule.native.group_scalars)
    expected = ({s.list_name for s in states} | {s.list_name for s in scalars}
                | ({"steps"} if rule.native.has_step else set())
                | ({"group_state"} if group_scalars else set()))
    for state in states:
        # What the kernel starts a state at is native: Python may only name it, as a native number.
        if state.kernel_initialized and state.initial not in ("gradient", "param") and native_kinds.get(
                state.initial, ("",))[0] != "number":
            raise RuntimeError(f"{rule.class_name}: state {state.name!r} starts at {state.initial!r}, "
                               f"which is not a native hyperparameter")
    if not expected <= set(rule.functional_arguments) <= expected | {"steps"}:
        raise RuntimeError(f"{rule.name}: functional arguments {rule.functional_arguments} do not match the "
                           f"native states {sorted(expected)}")
    return replace(rule, hyperparameters=tuple(hyperparameters), states=states, scalars=scalars,
                   has_step=rule.native.has_step, group_scalars=group_scalars, has_modes=rule.native.has_modes,
                   dense_gradients=rule.native.dense_gradients, sparse_gradients=rule.native.sparse_gradients)


SGD = _complete(RuleDescription(
    name="sgd",
    class_name="SGD",
    native=_core.rules.sgd,
    summary="Stochastic gradient descent, optionally with (Nesterov) momentum (torch.optim.SGD semantics).",
    formula="""\
g = s * grad + weight_decay * p
b = g                                   (first momentum step)
b = momentum * b + (1 - dampening) * g  (later steps)
p = p - lr * (g + momentum * b)         (nesterov)
p = p - lr * b                          (momentum != 0)
p = p - lr * g                          (momentum == 0)""",
    hyperparameters=(
        _number("lr", 1e-3, "learning rate"),
        _number("momentum", 0.0, "momentum factor; 0 disables momentum"),
        _number("dampening", 0.0, "dampening of the momentum"),
        _number("weight_decay", 0.0, "L2 penalty added to the gradient"),
        _flag("nesterov", False, "use Nesterov momentum (needs momentum > 0 and dampening 0)"),
        _MAXIMIZE,
    ),
    functional_arguments=("momentum_buffers",),
))

ADAGRAD = _complete(RuleDescription(
    name="adagrad",
    class_name="Adagrad",
    native=_core.rules.adagrad,
    summary="AdaGrad: per-element steps scaled by the root of the summed squared gradients "
            "(torch.optim.Adagrad semantics).",
    formula="""\
g   = s * grad + weight_decay * p
clr = lr / (1 + (t - 1) * lr_decay)
sum = sum + g * g
p   = p - clr * g / (sqrt(sum) + eps)""",
    hyperparameters=(
        _number("lr", 1e-2, "learning rate"),
        _number("lr_decay", 0.0, "learning-rate decay per step"),
        _number("weight_decay", 0.0, "L2 penalty added to the gradient"),
        _option("initial_accumulator_value", 0.0, "starting value of the squared-gradient sums"),
        _number("eps", 1e-10, "added to the root for numerical stability"),
        _MAXIMIZE,
    ),
    initial={"sum": "initial_accumulator_value"},
    functional_arguments=("state_sums", "steps"),
))

RMSPROP = _complete(RuleDescription(
    name="rmsprop",
    class_name="RMSprop",
    native=_core.rules.rmsprop,
    summary="RMSprop: steps scaled by a running root-mean-square of the gradient (torch.optim.RMSprop semantics).",
    formula="""\
g = s * grad + weight_decay * p
v = alpha * v + (1 - alpha) * g * g
a = lerp(a, g, 1 - alpha);  r = sqrt(v - a * a) + eps    (centered)
r = sqrt(v) + eps                                        (otherwise)
b = momentum * b + g / r;   p = p - lr * b                (momentum > 0)
p = p - lr * g / r                                       (otherwise)""",
    hyperparameters=(
        _number("lr", 1e-2, "learning rate"),
        _number("alpha", 0.99, "smoothing constant of the running averages"),
        _number("eps", 1e-8, "added to the root for numerical stability"),
        _number("weight_decay", 0.0, "L2 penalty added to the gradient"),
        _number("momentum", 0.0, "momentum factor (0 disables it)"),
        _flag("centered", False, "normalize by the estimated variance instead of the raw second moment"),
        _MAXIMIZE,
    ),
    functional_arguments=("square_avgs", "steps", "grad_avgs", "momentum_buffers"),
))

_ADAM_FORMULA = """\
g = s * grad + weight_decay * p                          (Adam: L2 penalty)
p = p * (1 - lr * weight_decay)                          (AdamW: decoupled decay)
m = lerp(m, g, 1 - beta1)
v = beta2 * v + (1 - beta2) * g * g
v_max = max(v_max, v), used instead of v below          (amsgrad)
p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)"""

ADAM = _complete(RuleDescription(
    name="adam",
    class_name="Adam",
    native=_core.rules.adam,
    summary="Adam, optionally AMSGrad, with weight decay as an L2 term in the gradient "
            "(torch.optim.Adam semantics).",
    formula=_ADAM_FORMULA,
    hyperparameters=(
        _number("lr", 1e-3, "learning rate"),
        _pair("betas", ("beta1", "beta2"), (0.9, 0.999),
              "decay rates of the first and second moment estimates; each a number or a schedule"),
        _number("eps", 1e-8, "added to the denominator for numerical stability"),
        _number("weight_decay", 0.0, "L2 penalty added to the gradient"),
        _flag("amsgrad", False, "normalize by the running maximum of the second moment"),
        _MAXIMIZE,
    ),
    fixed={"decoupled_weight_decay": False},
    functional_arguments=("exp_avgs", "exp_avg_sqs", "steps", "max_exp_avg_sqs"),
))

ADAMW = replace(
    ADAM,
    name="adamw",
    class_name="AdamW",
    summary="AdamW: Adam with decoupled weight decay, p *= 1 - lr * weight_decay before each step "
            "(torch.optim.AdamW semantics).",
    hyperparameters=tuple(
        replace(h, default=1e-2, doc="decoupled weight decay") if h.name == "weight_decay" else h
        for h in ADAM.hyperparameters
    ),
    fixed={"decoupled_weight_decay": True},
)

ADAFACTOR = _complete(RuleDescription(
    name="adafactor",
    class_name="Adafactor",
    native=_core.rules.adafactor,
    summary="Adafactor: a second moment factored into row and column means for parameters of 2 or more "
            "dimensions, steps relative to the parameter's scale, clipped updates "
            "(torch.optim.Adafactor semantics).",
    formula="""\
w = t**beta2_decay;  rho = min(lr, 1 / sqrt(t))
eps1 = finfo(dtype).eps when None (each parameter's dtype; torch takes the first parameter's for its group)
alpha = max(eps2, ||p|| / sqrt(n)) * rho            (||p|| before weight decay)
p = p * (1 - lr * weight_decay)
matrix (ndim >= 2; over the last two dimensions):
  row_var = lerp(row_var, mean(g * g, axis=-1), w)
  col_var = lerp(col_var, mean(g * g, axis=-2), w)
  v = row_var * col_var / max(mean(row_var, axis=-2), eps1)
vector: variance = lerp(variance, g * g, w);  v = variance
u = (1 / sqrt(max(v, eps1 * eps1))) * s * grad
p = p - alpha / max(1, ||u|| / (sqrt(n) * d)) * u""",
    hyperparameters=(
        _number("lr", 1e-2, "caps the relative step size and scales weight decay"),
        _number("beta2_decay", -0.8, "decay rate of the second-moment averaging weight t**beta2_decay"),
        _pair("eps", ("eps1", "eps2"), (None, 1e-3),
              "eps1 bounds the variance estimate (None: the dtype's machine epsilon), eps2 the parameter "
              "scale; each a number or a schedule"),
        _number("d", 1.0, "clipping threshold of the update's root mean square"),
        _number("weight_decay", 0.0, "decoupled weight decay, p *= 1 - lr * weight_decay"),
        _MAXIMIZE,
    ),
    functional_arguments=("row_vars", "col_vars", "variances", "steps"),
))

NADAM = _complete(RuleDescription(
    name="nadam",
    class_name="NAdam",
    native=_core.rules.nadam,
    summary="NAdam: Adam with Nesterov momentum and torch's momentum schedule (torch.optim.NAdam semantics).",
    formula="""\
g  = s * grad + weight_decay * p                         (L2 penalty)
p  = p * (1 - lr * weight_decay)                         (decoupled_weight_decay)
mu_t = beta1 * (1 - 0.5 * 0.96**(t * momentum_decay))
mu_product = mu_product * mu_t                           (a float64 per tensor, from 1)
m  = lerp(m, g, 1 - beta1)
v  = beta2 * v + (1 - beta2) * g * g
d  = sqrt(v / (1 - beta2**t)) + eps
p  = p - lr * (1 - mu_t) / (1 - mu_product) * g / d
p  = p - lr * mu_{t+1} / (1 - mu_product * mu_{t+1}) * m / d""",
    hyperparameters=(
        _number("lr", 2e-3, "learning rate"),
        _pair("betas", ("beta1", "beta2"), (0.9, 0.999),
              "decay rates of the first and second moment estimates; each a number or a schedule"),
        _number("eps", 1e-8, "added to the denominator for numerical stability"),
        _number("weight_decay", 0.0, "weight decay (an L2 penalty, or decoupled)"),
        _number("momentum_decay", 4e-3, "decay of the momentum schedule"),
        _flag("decoupled_weight_decay", False, "shrink the parameter (NAdamW) instead of adding an L2 penalty"),
        _MAXIMIZE,
    ),
    functional_arguments=("exp_avgs", "exp_avg_sqs", "mu_products", "steps"),
))

RADAM = _complete(RuleDescription(
    name="radam",
    class_name="RAdam",
    native=_core.rules.radam,
    summary="RAdam: Adam with its adaptive step rectified, plain momentum while the variance estimate "
            "is untractable (torch.optim.RAdam semantics).",
    formula="""\
g  = s * grad + weight_decay * p                         (L2 penalty)
p  = p * (1 - lr * weight_decay)                         (decoupled_weight_decay)
m  = lerp(m, g, 1 - beta1)
v  = beta2 * v + (1 - beta2) * g * g
rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)
r  = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))
p  = p - m / (1 - beta1**t) * lr * sqrt(1 - beta2**t) / (sqrt(v) + eps) * r   (rho_t > 5)
p  = p - m / (1 - beta1**t) * lr                                              (otherwise)""",
    hyperparameters=(
        _number("lr", 1e-3, "learning rate"),
        _pair("betas", ("beta1", "beta2"), (0.9, 0.999),
              "decay rates of the first and second moment estimates; each a number or a schedule"),
        _number("eps", 1e-8, "added to the denominator for numerical stability"),
        _number("weight_decay", 0.0, "weight decay (an L2 penalty, or decoupled)"),
        _flag("decoupled_weight_decay", False, "shrink the parameter (RAdamW) instead of adding an L2 penalty"),
        _MAXIMIZE,
    ),
    functional_arguments=("exp_avgs", "exp_avg_sqs", "steps"),
))

ADAMAX = _complete(RuleDescription(
    name="adamax",
    class_name="Adamax",
    native=_core.rules.adamax,
    summary="Adamax: Adam with an exponentially weighted infinity norm in the denominator "
            "(torch.optim.Adamax semantics).",
    formula="""\
g = s * grad + weight_decay * p
m = lerp(m, g, 1 - beta1)
u = maximum(beta2 * u, |g| + eps)                        (a NaN in either propagates)
p = p - lr / (1 - beta1**t) * m / u""",
    hyperparameters=(
        _number("lr", 2e-3, "learning rate"),
        _pair("betas", ("beta1", "beta2"), (0.9, 0.999),
              "decay rates of the first moment and of the infinity norm; each a number or a schedule"),
        _number("eps", 1e-8, "added to |g| for numerical stability"),
        _number("weight_decay", 0.0, "L2 penalty added to the gradient"),
        _MAXIMIZE,
    ),
    functional_arguments=("exp_avgs", "exp_infs", "steps"),
))

LION = _complete(RuleDescription(
    name="lion",
    class_name="Lion",
    native=_core.rules.lion,
    summary="Lion: steps of the sign of an interpolated momentum, with decoupled weight decay "
            "(Chen et al. 2023, 'Symbolic Discovery of Optimization Algorithms'; not in torch.optim).",
    formula="""\
g = s * grad
c = beta1 * m + (1 - beta1) * g
p = p * (1 - lr * weight_decay) - lr * sign(c)           (sign(0) = 0; a NaN stays NaN)
m = beta2 * m + (1 - beta2) * g""",
    hyperparameters=(
        _number("lr", 1e-4, "learning rate"),
        _pair("betas", ("beta1", "beta2"), (0.9, 0.99),
              "interpolation weight of the update direction and decay of the momentum; "
              "each a number or a schedule"),
        _number("weight_decay", 0.0, "decoupled weight decay"),
        _MAXIMIZE,
    ),
    functional_arguments=("exp_avgs",),
))

ADADELTA = _complete(RuleDescription(
    name="adadelta",
    class_name="Adadelta",
    native=_core.rules.adadelta,
    summary="Adadelta: steps scaled by the ratio of running roots of squared updates and squared gradients "
            "(torch.optim.Adadelta semantics).",
    formula="""\
g = s * grad + weight_decay * p
v = rho * v + (1 - rho) * g * g
d = sqrt(u + eps) / sqrt(v + eps) * g        (u = acc_delta, before its update)
u = rho * u + (1 - rho) * d * d
p = p - lr * d""",
    hyperparameters=(
        _number("lr", 1.0, "factor applied to the update"),
        _number("rho", 0.9, "decay of the running averages"),
        _number("eps", 1e-6, "added inside both roots for numerical stability"),
        _number("weight_decay", 0.0, "L2 penalty added to the gradient"),
        _MAXIMIZE,
    ),
    functional_arguments=("square_avgs", "acc_deltas", "steps"),
))

RPROP = _complete(RuleDescription(
    name="rprop",
    class_name="Rprop",
    native=_core.rules.rprop,
    summary="Rprop: per-element step sizes that grow while the gradient keeps its sign and shrink when it "
            "flips; the parameter moves by the sign of the gradient (torch.optim.Rprop semantics).",
    formula="""\
z = lr;  prev = 0                            (a tensor's first step; z = step_size)
g = s * grad
q = sign(g * prev)                           (torch.sign: 0 for zeros and NaN)
z = clamp(z * (etaplus if q > 0, etaminus if q < 0, else 1), step_size_min, step_size_max)
g = 0 where q < 0
p = p - sign(g) * z
prev = g""",
    hyperparameters=(
        _number("lr", 1e-2, "the initial step size (later changes only affect parameters not yet stepped)"),
        _pair("etas", ("etaminus", "etaplus"), (0.5, 1.2),
              "step-size factors where the gradient's sign flips and where it stays; each a number or a schedule"),
        _pair("step_sizes", ("step_size_min", "step_size_max"), (1e-6, 50.0),
              "smallest and largest step size (min <= max); each a number or a schedule"),
        _MAXIMIZE,
    ),
    initial={"step_size": "lr"},
    functional_arguments=("prevs", "step_sizes", "steps"),
))

ASGD = _complete(RuleDescription(
    name="asgd",
    class_name="ASGD",
    native=_core.rules.asgd,
    summary="ASGD: averaged SGD, with a decaying step size eta and a running average ax of the parameter "
            "(torch.optim.ASGD semantics).",
    formula="""\
eta = lr, mu = 1                             (a tensor's first step: NaN means not set yet)
g   = s * grad + weight_decay * p
p   = p * (1 - lambd * eta)
p   = p - eta * g
ax  = p                                      (mu == 1)
ax  = ax + (p - ax) * mu                     (otherwise)
eta = lr / (1 + lambd * lr * t)**alpha       (after the step, for the next one)
mu  = 1 / max(1, t - t0)""",
    hyperparameters=(
        _number("lr", 1e-2, "learning rate: eta's scale"),
        _number("lambd", 1e-4, "decay term"),
        _number("alpha", 0.75, "power of eta's decay"),
        _number("t0", 1e6, "the step after which the average starts moving"),
        _number("weight_decay", 0.0, "L2 penalty added to the gradient"),
        _MAXIMIZE,
    ),
    functional_arguments=("axs", "mus", "etas", "steps"),
))

#: Every rule, by name, in the order the documentation lists them.


_SCHEDULE_FREE_GROUP = """\
with k the group's step count (state: k, lr_max, weight_sum, train_mode):
lr     = lr * (k + 1) / warmup_steps   (while k < warmup_steps)
lr_max = max(lr, lr_max);  w = (k + 1)**r * lr_max**weight_lr_power
weight_sum = weight_sum + w;  c = w / weight_sum   (0 when weight_sum == 0)"""

_SCHEDULE_FREE_MODES = """\
z = y on the tensor's first step; train()/eval() move p between y and x:
eval: p = lerp(p, z, 1 - 1/{beta})    train: p = lerp(p, z, 1 - {beta})"""


def _warmup() -> Hyperparameter:
    return _number("warmup_steps", 0, "linear learning-rate warmup over this many steps (the package's own)")


def _weighting() -> Tuple[Hyperparameter, Hyperparameter]:
    return (_number("r", 0.0, "weight the average's iterates by (k + 1)**r"),
            _number("weight_lr_power", 2.0, "weight the average's iterates by lr_max**weight_lr_power"))


SCHEDULE_FREE_ADAMW = _complete(RuleDescription(
    name="schedule_free_adamw",
    class_name="ScheduleFreeAdamW",
    native=_core.rules.schedule_free_adamw,
    summary="Schedule-free AdamW (Defazio et al. 2024): no learning-rate schedule needed; the parameters hold y "
            "in train mode and the average x in eval mode (the schedulefree package's AdamWScheduleFree).",
    formula=_SCHEDULE_FREE_GROUP + """
v = beta2 * v + (1 - beta2) * g * g
u = g / (sqrt(v / (1 - beta2**(k + 1))) + eps) + weight_decay * y
y = lerp(y, z, c) + lr * (beta1 * (1 - c) - 1) * u
z = z - lr * u
""" + _SCHEDULE_FREE_MODES.format(beta="beta1"),
    hyperparameters=(
        _number("lr", 0.0025, "learning rate"),
        _pair("betas", ("beta1", "beta2"), (0.9, 0.999),
              "interpolation between z and x, and the second-moment decay; each a number or a schedule"),
        _number("eps", 1e-8, "added to the denominator for numerical stability"),
        _number("weight_decay", 0.0, "weight decay, taken at y (added to the normalized gradient)"),
        _warmup(),
        *_weighting(),
    ),
    functional_arguments=("zs", "exp_avg_sqs", "group_state"),
))

SCHEDULE_FREE_SGD = _complete(RuleDescription(
    name="schedule_free_sgd",
    class_name="ScheduleFreeSGD",
    native=_core.rules.schedule_free_sgd,
    summary="Schedule-free SGD (Defazio et al. 2024): no learning-rate schedule needed; the parameters hold y "
            "in train mode and the average x in eval mode (the schedulefree package's SGDScheduleFree).",
    formula=_SCHEDULE_FREE_GROUP + """
u = g + weight_decay * y
y = lerp(y, z, c) + lr * (momentum * (1 - c) - 1) * u
z = z - lr * u
""" + _SCHEDULE_FREE_MODES.format(beta="momentum"),
    hyperparameters=(
        _number("lr", 1.0, "learning rate"),
        _number("momentum", 0.9, "interpolation between z and x (in (0, 1), as the package requires)"),
        _number("weight_decay", 0.0, "L2 penalty added to the gradient, taken at y"),
        _warmup(),
        *_weighting(),
    ),
    functional_arguments=("zs", "group_state"),
))

SPARSE_ADAM = _complete(RuleDescription(
    name="sparse_adam",
    class_name="SparseAdam",
    native=_core.rules.sparse_adam,
    summary="SparseAdam: lazy Adam for row-sparse gradients (lrcore.SparseRows); only the referenced rows "
            "of the parameter and of its moments change (torch.optim.SparseAdam semantics).",
    formula="""\
g    = s * (the values of row r, duplicates summed in the order given)
m[r] = m[r] + (g - m[r]) * (1 - beta1)
v[r] = v[r] + (g * g - v[r]) * (1 - beta2)
p[r] = p[r] - (lr * sqrt(1 - beta2**t) / (1 - beta1**t)) * (m[r] / (sqrt(v[r]) + eps))
(a dense gradient is refused with TypeError, as torch refuses it)""",
    hyperparameters=(
        _number("lr", 1e-3, "learning rate"),
        _pair("betas", ("beta1", "beta2"), (0.9, 0.999),
              "decay rates of the first and second moment estimates; each a number or a schedule"),
        _number("eps", 1e-8, "added to the denominator for numerical stability"),
        _MAXIMIZE,
    ),
    functional_arguments=("exp_avgs", "exp_avg_sqs", "steps"),
))

ROWWISE_ADAGRAD = _complete(RuleDescription(
    name="rowwise_adagrad",
    class_name="RowWiseAdagrad",
    native=_core.rules.rowwise_adagrad,
    summary="Row-wise AdaGrad (FBGEMM's): one accumulator per row of a table, for dense or row-sparse "
            "gradients (lrcore.SparseRows).",
    formula="""\
g      = s * grad[r] + weight_decay * p[r]     (grad[r]: row r's gradient, duplicates summed)
sum[r] = sum[r] + mean_j(g[j] * g[j])          (the mean in a fixed order, the same on every ISA)
p[r]   = p[r] + (-lr / (sqrt(sum[r]) + eps)) * g
(row-sparse: only the referenced rows change, weight decay included)""",
    hyperparameters=(
        _number("lr", 1e-2, "learning rate"),
        _number("eps", 1e-10, "added to the root for numerical stability"),
        _number("weight_decay", 0.0, "L2 penalty added to the gradient of each row updated"),
        _MAXIMIZE,
    ),
    functional_arguments=("state_sums",),
))

#: Every rule, by name, in the order the documentation lists them.
RULES: Dict[str, RuleDescription] = {
    rule.name: rule for rule in (SGD, ADAGRAD, RMSPROP, ADAM, ADAMW, NADAM, RADAM, ADAMAX, LION, ADADELTA, RPROP, ASGD, ADAFACTOR,
                                 SCHEDULE_FREE_ADAMW, SCHEDULE_FREE_SGD, SPARSE_ADAM, ROWWISE_ADAGRAD)
}


def documentation_table() -> str:
    """A Markdown table of every rule's hyperparameters, defaults, valid ranges and state arrays."""
    lines = ["| class | hyperparameters (default; valid) | state per parameter |", "|---|---|---|"]
    for rule in RULES.values():
        arguments = "<br>".join(
            f"`{h.name}={h.default!r}` ({h.valid})" for h in rule.hyperparameters
        )
        states = "<br>".join(
            f"`{s.name}`" + (f" (when {s.needed_when})" if s.needed_when else "")
            + (f" ({s.applies_to}{'' if s.shape == 'param' else ', shaped by its ' + s.shape})"
               if s.applies_to else "")
            + (" (one per row)" if s.per_row else "")
            for s in rule.states
        ) or "none"
        if rule.group_scalars:
            states += "<br>per group: " + ", ".join(f"`{g.name}`" for g in rule.group_scalars)
        if rule.scalars:
            states += "<br>" + "<br>".join(f"`{s.name}` (a float64 per tensor, from {s.initial!r})"
                                           for s in rule.scalars)
        lines.append(f"| `lrcore.{rule.class_name}` | {arguments} | {states} |")
    return "\n".join(lines)
