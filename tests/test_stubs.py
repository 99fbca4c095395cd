"""The type stubs: generated ones are current, every stub agrees with the runtime, and mypy uses them."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap

import pytest

import lrcore
from lrcore import _core, _stubs
from lrcore._rules import RULES

PACKAGE = _stubs.PACKAGE_DIRECTORY


def _stub_tree(relative: str) -> ast.Module:
    return ast.parse((PACKAGE / relative).read_text(encoding="utf-8"))


def _literal(node):
    return inspect.Parameter.empty if node is None else ast.literal_eval(node)


def _stub_parameters(function: ast.FunctionDef):
    """(name, kind, default) of a stub function's parameters, as inspect reports them."""
    arguments = function.args
    positional = arguments.posonlyargs + arguments.args
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    result = [(a.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD, _literal(d)) for a, d in zip(positional, defaults)]
    result += [(a.arg, inspect.Parameter.KEYWORD_ONLY, _literal(d))
               for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults)]
    return result


def _runtime_parameters(function):
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def _definitions(tree: ast.Module, kind):
    return {node.name: node for node in tree.body if isinstance(node, kind)}


# ------------------------------------------------------------- generated --
@pytest.mark.parametrize("relative", sorted(_stubs.stubs()))
def test_checked_in_stub_is_the_generators_output(relative):
    path = PACKAGE / relative
    assert path.exists(), f"{relative} is missing: run `python -m lrcore._stubs --write`"
    assert path.read_text(encoding="utf-8") == _stubs.stubs()[relative], (
        f"{relative} is stale: run `python -m lrcore._stubs --write`")


def test_check_mode_reports_a_stale_stub(tmp_path, capsys):
    (tmp_path / "optim").mkdir()
    for relative, text in _stubs.stubs().items():
        (tmp_path / relative).write_text(text, encoding="utf-8")
    assert _stubs.main(["--check", "--directory", str(tmp_path)]) == 0
    (tmp_path / "functional.pyi").write_text("# an old stub\n", encoding="utf-8")
    assert _stubs.main(["--check", "--directory", str(tmp_path)]) == 1
    assert "functional.pyi" in capsys.readouterr().err
    assert _stubs.main(["--write", "--directory", str(tmp_path)]) == 0
    assert (tmp_path / "functional.pyi").read_text(encoding="utf-8") == _stubs.functional_stub()


def test_class_stubs_match_the_runtime_constructors():
    classes = _definitions(_stub_tree("optim/_classes.pyi"), ast.ClassDef)
    assert sorted(classes) == sorted(rule.class_name for rule in RULES.values())
    for rule in RULES.values():
        methods = {n.name: n for n in classes[rule.class_name].body if isinstance(n, ast.FunctionDef)}
        init = methods.pop("__init__")
        runtime = getattr(lrcore, rule.class_name).__init__
        assert _stub_parameters(init) == _runtime_parameters(runtime), rule.class_name
        # A rule with modes adds train(), eval() and the train_mode property; no other rule adds anything.
        assert sorted(methods) == (["eval", "train", "train_mode"] if rule.has_modes else []), rule.class_name
        for name in methods:
            assert hasattr(getattr(lrcore, rule.class_name), name), (rule.class_name, name)


def test_functional_stubs_match_the_runtime_functions():
    functions = _definitions(_stub_tree("functional.pyi"), ast.FunctionDef)
    assert sorted(functions) == sorted(lrcore.functional.__all__)
    for name, stub in functions.items():
        assert _stub_parameters(stub) == _runtime_parameters(getattr(lrcore.functional, name)), name


# ------------------------------------------------------------ hand-written --
def _core_stub():
    tree = _stub_tree("_core.pyi")
    functions = _definitions(tree, ast.FunctionDef)
    classes = _definitions(tree, ast.ClassDef)
    variables = {node.target.id for node in tree.body
                 if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}
    return functions, classes, variables


def test_core_stub_lists_what_the_compiled_module_has():
    functions, classes, variables = _core_stub()
    public = {name for name in dir(_core) if not name.startswith("_")}
    public_classes = {name for name in classes if not name.startswith("_")}
    assert set(functions) | variables | public_classes == public
    for name in public_classes:
        assert isinstance(getattr(_core, name), type), name
    for name in functions:
        assert callable(getattr(_core, name)), name


def _native_parameter_names(method) -> list:
    """Parameter names from a pybind11 signature line, e.g. ``step(self: Rule, groups: object, ...) -> bool``."""
    first_line = method.__doc__.splitlines()[0]
    inside = first_line[first_line.index("(") + 1:first_line.rindex(")")]
    # A bare "*" (keyword-only arguments follow) is not a parameter.
    return [re.match(r"\s*(\w+)", part).group(1) for part in inside.split(",") if part.strip() != "*"]


def test_core_stub_describes_the_rules_submodule():
    functions, classes, _ = _core_stub()
    rules_module = classes["_RulesModule"]
    rule_attributes = [node.target.id for node in rules_module.body
                       if isinstance(node, ast.AnnAssign) and ast.unparse(node.annotation) == "_Rule"]
    assert tuple(rule_attributes) == _core.rules.names, "add the new rule to _RulesModule in _core.pyi"
    assert {name for name in dir(_core.rules) if not name.startswith("_")} == (
        set(rule_attributes) | {"Rule", "names"})
    methods = {n.name: n for n in classes["_Rule"].body if isinstance(n, ast.FunctionDef)}
    native = _core.rules.Rule
    public = {name for name in dir(native) if not name.startswith("_")}
    assert set(methods) == public
    for name, stub in methods.items():
        if any(ast.unparse(d) == "property" for d in stub.decorator_list):
            assert isinstance(getattr(native, name), property), name
        else:
            stub_names = [a.arg for a in stub.args.args + stub.args.kwonlyargs]
            assert stub_names == _native_parameter_names(getattr(native, name)), name
    assert [a.arg for a in functions["check_parameters"].args.args] == _native_parameter_names(
        _core.check_parameters)


def _class_body(node: ast.ClassDef, kind):
    return {n.name: n for n in node.body if isinstance(n, kind)}


def test_core_stub_describes_the_schedules_submodule():
    _, classes, _ = _core_stub()
    aliases = {node.targets[0].id: node.value.id for node in classes["_SchedulesModule"].body
               if isinstance(node, ast.Assign)}
    assert set(aliases) == {name for name in dir(_core.schedules) if not name.startswith("_")}
    for name, stub_name in aliases.items():
        native = getattr(_core.schedules, name)
        methods = _class_body(classes[stub_name], ast.FunctionDef)
        properties = [n for n, f in methods.items() if any(ast.unparse(d) == "property" for d in f.decorator_list)]
        extra = [n for n in dir(native) if not n.startswith("_") and n not in native._fields]
        assert properties == list(native._fields) + extra, name
        assert [a.arg for a in methods["__init__"].args.kwonlyargs] == list(native._fields), name


@pytest.mark.parametrize("submodule, stub_class", [("gradients", "_GradientsModule"), ("bench", "_BenchModule")])
def test_core_stub_describes_the_function_submodules(submodule, stub_class):
    _, classes, _ = _core_stub()
    functions = _class_body(classes[stub_class], ast.FunctionDef)
    native = getattr(_core, submodule)
    assert set(functions) == {name for name in dir(native) if not name.startswith("_")}
    for name, stub in functions.items():
        assert [a.arg for a in stub.args.args] == _native_parameter_names(getattr(native, name)), name


def test_package_ships_py_typed():
    assert (PACKAGE / "py.typed").is_file()


# ------------------------------------------------------------------- mypy --
ACCEPTED = """\
import numpy as np
import lrcore
from lrcore.schedules import CosineAnnealing, Warmup

w = np.zeros(4, dtype=np.float32)
b = np.zeros(2, dtype=np.float32)
lr = Warmup(CosineAnnealing(0.1, T_max=100), warmup_steps=10)
opt = lrcore.Adam([w, b], lr=lr, betas=(0.9, lambda t: 0.999), weight_decay=1e-4, skip_nonfinite=True)
applied: bool = opt.step([np.ones(4, dtype=np.float32), None])
cycle = lrcore.schedules.Cyclic(0.1, 1.0, step_size_up=10, mode="triangular2")
period: int = cycle.step_size_up + cycle.step_size_down
value: float = cycle(3) + lr(5)
named = lrcore.SGD([("w", w), ("b", b)], 0.01, momentum=0.9, nesterov=True)
named.step({"w": np.ones(4, dtype=np.float32), "b": None})
groups = lrcore.AdamW([{"params": [w]}, {"params": [b], "lr": 1e-4}], amsgrad=True)
lrcore.Adagrad([w], initial_accumulator_value=0.1)
steps = np.zeros(1, dtype=np.int64)
lrcore.functional.adam([w], [np.ones(4, dtype=np.float32)], [lrcore.functional.state_like(w)],
                       [lrcore.functional.state_like(w)], steps, [None], lr=1e-3, amsgrad=True)
"""

# Each line must be an error, by the code mypy reports.
REJECTED = {
    'lrcore.Adam([w], lr="fast")': "arg-type",
    "lrcore.Adam([w], betas=0.9)": "arg-type",
    "lrcore.Adam([w], beta1=0.9)": "call-arg",
    "lrcore.SGD([w], nesterov=0.9)": "arg-type",
    'lrcore.functional.sgd([w], [w], lr=lambda t: 0.1)': "arg-type",
    "lrcore.functional.adam([w], [w], [w], [w])": "call-arg",
    'lrcore.schedules.Cyclic(0.1, 1.0, mode="sawtooth")': "arg-type",
    "lrcore.schedules.CosineAnnealing(0.1, 10).lr.upper()": "attr-defined",
}


def test_mypy_accepts_normal_use_and_rejects_wrong_types(tmp_path):
    api = pytest.importorskip("mypy.api", reason="mypy is not installed")
    (tmp_path / "accepted.py").write_text(ACCEPTED, encoding="utf-8")
    rejected_lines = list(REJECTED)
    (tmp_path / "rejected.py").write_text(
        "import numpy as np\nimport lrcore\n\nw = np.zeros(4)\n" + "\n".join(rejected_lines) + "\n",
        encoding="utf-8")
    arguments = ["--follow-imports=silent", "--no-error-summary", "--show-error-codes", "--hide-error-context",
                 "--cache-dir", str(tmp_path / "cache"), str(tmp_path / "accepted.py"), str(tmp_path / "rejected.py")]
    package_parent = PACKAGE.parent
    if package_parent.name not in ("site-packages", "dist-packages"):
        # A source or editable install: point mypy at the package (mypy refuses site-packages here).
        config = tmp_path / "mypy.ini"
        config.write_text(f"[mypy]\nmypy_path = {package_parent}\n", encoding="utf-8")
        arguments = ["--config-file", str(config)] + arguments
    stdout, stderr, _ = api.run(arguments)
    errors = [line for line in stdout.splitlines() if ": error: " in line]
    assert not [e for e in errors if "accepted.py" in e], stdout + stderr
    found = {}
    for line in errors:
        match = re.match(r".*rejected\.py:(\d+): error: .*\[([\w-]+)\]$", line)
        assert match, line
        found.setdefault(int(match.group(1)), set()).add(match.group(2))
    first = 5  # the line of the first rejected statement
    for offset, statement in enumerate(rejected_lines):
        assert REJECTED[statement] in found.get(first + offset, set()), (
            f"mypy did not reject {statement!r}:\n" + textwrap.indent(stdout + stderr, "    "))
    assert set(found) == set(range(first, first + len(rejected_lines))), stdout
