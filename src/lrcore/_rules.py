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

from . import _core

__all__ = ["RULES", "Hyperparameter", "RuleDescription", "StateArray", "documentation_table"]


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
            gradient on its first use) or the name of the option it is filled with.
        shape: ``"param"`` (shaped like its parameter), ``"rows"`` (the
            parameter's shape with its last dimension 1: one value per row of the
            last two dimensions) or ``"columns"`` (with its second-to-last dimension 1).
        dims: which parameters have it: ``"any"``, ``"matrix"`` (2 or more
            dimensions) or ``"vector"`` (0 or 1); the others have ``None``.
    """

    name: str
    list_name: str
    needed_when: str
    initial: str
    shape: str = "param"
    dims: str = "any"

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
        initial: state arrays filled with an option's value instead of zero (state name -> option name).
        functional_arguments: the functional layer's positional arguments after ``params, grads``.
        states: the state arrays (from the native description).
        has_step: whether the kernel uses per-tensor step numbers.
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
    has_step: bool = False

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
            ranges = [native_kinds[n][1] for n in h.native]
            if len(set(ranges)) > 1:  # a pair whose elements differ (Adafactor's eps): say each
                valid = "; ".join(f"{n} {r}" for n, r in zip(h.native, ranges))
            h = replace(h, valid=valid)
        hyperparameters.append(h)
    for native in rule.fixed:
        if native in covered or native not in native_kinds:
            raise RuntimeError(f"{rule.class_name}: fixed hyperparameter {native!r} is unknown or also an argument")
        covered[native] = "fixed"
    missing = set(native_kinds) - set(covered)
    if missing:
        raise RuntimeError(f"{rule.class_name}: native hyperparameters {sorted(missing)} have no argument")
    states = tuple(
        StateArray(name, list_name, needed_when,
                   "gradient" if kernel_initialized else rule.initial.get(name, "zero"), shape, dims)
        for name, list_name, needed_when, kernel_initialized, shape, dims in rule.native.states
    )
    expected = {s.list_name for s in states} | ({"steps"} if rule.native.has_step else set())
    if not expected <= set(rule.functional_arguments) <= expected | {"steps"}:
        raise RuntimeError(f"{rule.name}: functional arguments {rule.functional_arguments} do not match the "
                           f"native states {sorted(expected)}")
    return replace(rule, hyperparameters=tuple(hyperparameters), states=states, has_step=rule.native.has_step)


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

#: Every rule, by name, in the order the documentation lists them.
RULES: Dict[str, RuleDescription] = {rule.name: rule for rule in (SGD, ADAGRAD, RMSPROP, ADAM, ADAMW,
                                                                   ADAFACTOR)}


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
            for s in rule.states
        ) or "none"
        lines.append(f"| `lrcore.{rule.class_name}` | {arguments} | {states} |")
    return "\n".join(lines)
