"""Schedule and range-test plots, the safe schedule-expression parser, and ``python -m lrcore plot``."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lrcore
from lrcore import schedules
from lrcore._expression import ExpressionError, parse_schedule, schedule_constructors
from lrcore._plot_command import default_steps, main as plot_main
from lrcore.lr_finder import find_lr
from lrcore.plotting import plot_lr_finder, plot_schedule

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def mpl():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    return matplotlib


def assert_drawn_png(path, min_bytes=3000):
    """The file is a PNG of a real drawing: not blank, not tiny."""
    import matplotlib.image

    data = Path(path).read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > min_bytes
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert np.std(pixels[..., :3]) > 0.05  # lines and text, not a blank canvas


# ------------------------------------------------------------------------------------------------
# lrcore.plot_schedule (also lrcore.plotting.plot_schedule and, for older code, lrcore.schedules.plot)
# ------------------------------------------------------------------------------------------------
def test_plot_schedule_is_reachable_under_every_documented_name():
    assert lrcore.plot_schedule is plot_schedule
    assert lrcore.schedules.plot is plot_schedule
    from lrcore.schedules import plot

    assert plot is plot_schedule


def test_schedule_plot_writes_png(mpl, tmp_path):
    path = tmp_path / "onecycle.png"
    ax = lrcore.plot_schedule(schedules.OneCycle(0.1, total_steps=200), 200, path=path)
    assert_drawn_png(path)
    (line,) = ax.get_lines()
    x, y = line.get_data()
    assert list(x) == list(range(200))
    assert max(y) == pytest.approx(0.1)


def test_several_schedules_with_labels_and_log_scale(mpl, tmp_path):
    path = tmp_path / "compare.png"
    compared = [schedules.CosineAnnealing(0.1, T_max=100), schedules.StepDecay(0.1, step_size=30, gamma=0.1),
                lambda t: 0.05]
    ax = plot_schedule(compared, 100, labels=["cosine", "step", "constant"], path=str(path), log_scale=True)
    assert_drawn_png(path)
    assert [line.get_label() for line in ax.get_lines()] == ["cosine", "step", "constant"]
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["cosine", "step", "constant"]
    by_name = plot_schedule({"a": schedules.Constant(0.1), "b": schedules.Constant(0.2)}, 10, path=path)
    assert [line.get_label() for line in by_name.get_lines()] == ["a", "b"]


def test_draws_into_a_given_axes_and_pyplot(mpl):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    assert plot_schedule(schedules.Constant(0.1), 5, ax=ax) is ax
    assert len(ax.get_lines()) == 1
    ax = plot_schedule(schedules.Constant(0.1), 5)  # a pyplot figure, ready for plt.show()
    try:
        assert ax.figure in [plt.figure(n) for n in plt.get_fignums()]
    finally:
        plt.close("all")


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((schedules.Constant(0.1), 0), {}, ValueError, "steps"),
    ((schedules.Constant(0.1), 2.5), {}, TypeError, "steps"),
    ((schedules.Constant(0.1), True), {}, TypeError, "steps"),
    ((0.1, 10), {}, TypeError, "schedule"),
    (([], 10), {}, ValueError, "nothing to draw"),
    (([schedules.Constant(0.1)], 10), {"labels": ["a", "b"]}, ValueError, "labels"),
    (([schedules.Constant(0.1)], 10), {"labels": "a"}, TypeError, "labels"),
    (({"a": schedules.Constant(0.1)}, 10), {"labels": ["a"]}, ValueError, "labels"),
    ((lambda t: float("nan"), 10), {}, ValueError, "finite"),
    ((lambda t: "0.1", 10), {}, TypeError, "number"),
    ((schedules.Constant(0.1), 10), {"path": 3}, TypeError, "path"),
    ((schedules.Constant(0.1), 10), {"ax": "axes"}, TypeError, "ax"),
])
def test_schedule_plot_rejects_bad_input(mpl, tmp_path, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        plot_schedule(*args, **kwargs)


def test_missing_matplotlib_says_what_to_install(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(ImportError, match=r"pip install matplotlib \(the 'plot' extra: pip install '\.\[plot\]' from a source checkout\)"):
        lrcore.plot_schedule(schedules.Constant(0.1), 10, path=tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
    assert plot_main(["Constant(0.1)", "-o", str(tmp_path / "y.png")]) == 1


# ------------------------------------------------------------------------------------------------
# LRFinderResult.plot
# ------------------------------------------------------------------------------------------------
def _range_test():
    rng = np.random.default_rng(0)
    scales = np.logspace(-1, 1, 10)
    x = rng.standard_normal(10)
    return find_lr(lrcore.SGD([x], lr=0.1), lambda: (0.5 * float(np.sum(scales * x * x)), [scales * x]))


def test_range_test_plot(mpl, tmp_path):
    result = _range_test()
    path = tmp_path / "lr_finder.png"
    ax = result.plot(path=path)
    assert_drawn_png(path)
    assert ax.get_xscale() == "log"
    marker = [line for line in ax.get_lines() if line.get_label().startswith("suggested lr")]
    assert len(marker) == 1 and marker[0].get_xdata()[0] == result.suggested_lr
    with pytest.raises(ValueError, match="skip_end"):
        result.plot(path=path, skip_end=-1)

    # The function itself takes plain arrays.
    ax = plot_lr_finder([1e-3, 1e-2, 1e-1], [2.0, 1.0, 3.0], suggested_index=0, path=path)
    assert [line.get_label() for line in ax.get_lines()][:2] == ["loss", "smoothed loss"]


@pytest.mark.parametrize(("args", "kwargs", "error", "match"), [
    (({"lrs": [1.0]}, [1.0]), {}, TypeError, "lrs"),
    (([1.0, 2.0], [1.0]), {}, ValueError, "losses"),
    (([1.0, 2.0], [1.0, 2.0], [[1.0, 2.0]]), {}, ValueError, "smoothed_losses"),
    (([1.0, 2.0], [1.0, 2.0]), {"suggested_index": 2}, ValueError, "suggested_index"),
    (([1.0, 2.0], [1.0, 2.0]), {"skip_end": -1}, ValueError, "skip_end"),
    (([], []), {}, ValueError, "no steps"),
])
def test_range_test_plot_rejects_bad_arrays(mpl, tmp_path, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        plot_lr_finder(*args, path=tmp_path / "x.png", **kwargs)
    assert not (tmp_path / "x.png").exists()


# ------------------------------------------------------------------------------------------------
# The expression parser of the plot command
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "OneCycle(0.1, total_steps=1000)",
    "Warmup(CosineAnnealing(0.1, T_max=100), warmup_steps=10)",
    "  StepDecay(1e-1, step_size=30, gamma=+0.5)  ",
    "MultiStepDecay(0.1, milestones=[30, 60], gamma=0.1)",
    "MultiStepDecay(0.1, (30, 60))",
    "Cyclic(0.001, 0.1, step_size_up=20, step_size_down=None, mode='triangular2')",
    "ExponentialDecay(0.1, gamma=0.5, decay_steps=10, staircase=True)",
    "Sequential([Constant(0.01), CosineAnnealing(0.1, T_max=90)], milestones=[10])",
    "Chained([StepDecay(0.1, step_size=10), ExponentialDecay(0.1, gamma=0.99)])",
    "Scaled(CosineAnnealing(0.1, T_max=100), factor=0.5)",
    "Product([Linear(0.1), StepDecay(1.0, step_size=10)])",
    "ReduceOnPlateau(Warmup(0.1, warmup_steps=5), factor=0.5)",
    "Linear(0.1, start_factor=1.0, end_factor=0.0, total_steps=100)",
])
def test_expressions_that_build_schedules(text):
    schedule = parse_schedule(text)
    assert isinstance(schedule, schedules.Schedule)
    assert np.isfinite(schedule(0))
    # The repr is an expression too, and rebuilds the same schedule (ReduceOnPlateau's repr names its
    # first argument "schedule", its constructor "schedule_or_lr").
    if not text.startswith("ReduceOnPlateau"):
        assert repr(parse_schedule(repr(schedule))) == repr(schedule)


@pytest.mark.parametrize("text, match", [
    ("__import__('os').system('true')", "attribute access"),
    ("__import__('os')", "not an lrcore schedule"),
    ("eval('1')", "not an lrcore schedule"),
    ("open('/etc/passwd')", "not an lrcore schedule"),
    ("os.system('true')", "attribute access"),
    ("lrcore.schedules.OneCycle(0.1, total_steps=10)", "attribute access"),
    ("OneCycle(0.1, total_steps=10).__class__", "expected a schedule constructor"),
    ("OneCycle.__init__(0.1, total_steps=10)", "attribute access"),
    ("(lambda: OneCycle(0.1, total_steps=10))()", "cannot be called"),
    ("OneCycle(lambda t: 0.1, total_steps=10)", "lambda"),
    ("Lambda(0.1, fn=1)", "Python function"),
    ("Schedule()", "not an lrcore schedule"),
    ("plot(1, 2)", "not an lrcore schedule"),
    ("10**10**10", "expected a schedule constructor"),
    ("OneCycle(0.1, total_steps=10**10**10)", "arithmetic"),
    ("OneCycle(0.1, total_steps=9**9**9)", "arithmetic"),
    ("OneCycle(0.1 * 2, total_steps=10)", "arithmetic"),
    ("OneCycle(0.1, total_steps=" + "9" * 40 + ")", "too large"),
    ("OneCycle(0.1, total_steps=10" + "0" * 5000 + ")", "too long"),
    ("OneCycle(x, total_steps=10)", "the name 'x'"),
    ("OneCycle(True, total_steps=10)", "OneCycle: max_lr"),
    ("OneCycle(0.1, total_steps=-5)", "total_steps"),
    ("OneCycle(0.1)", "total_steps"),
    ("OneCycle(0.1, total_steps=10, bogus=1)", "bogus"),
    ("OneCycle(*[0.1], total_steps=10)", r"\*arguments"),
    ("OneCycle(0.1, **{'total_steps': 10})", r"\*\*arguments"),
    ("OneCycle(1j, total_steps=10)", "complex"),
    ("OneCycle(-(0.1), total_steps=10)", "OneCycle: max_lr"),
    ("OneCycle(-(-0.1), total_steps=10)", "sign"),
    ("OneCycle(0.1, total_steps=[i for i in range(9)])", "ListComp"),
    ("OneCycle(0.1, total_steps={'a': 1})", "Dict"),
    ("OneCycle(0.1, total_steps=10)[0]", "expected a schedule constructor"),
    ("OneCycle(0.1, total_steps=10); import os", "invalid syntax"),
    ("OneCycle(0.1, total_steps=10", "invalid syntax"),
    ("(" * 300 + "1" + ")" * 300, "nested|syntax|parse"),
    ("Warmup(" * 30 + "0.1" + ", warmup_steps=1)" * 30, "nested too deeply"),
    ("OneCycle('" + "a" * 100 + "', total_steps=10)", "limited"),
    ("0.1", "expected a schedule constructor"),
    ("", "empty"),
    ("[OneCycle(0.1, total_steps=10)]", "expected a schedule constructor"),
    ("OneCycle(0.1, total_steps=f'{10}')", "JoinedStr"),
])
def test_expressions_that_are_rejected(text, match):
    with pytest.raises(ExpressionError, match=match):
        parse_schedule(text)


def test_only_schedule_constructors_are_callable():
    names = set(schedule_constructors())
    assert names == set(schedules.__all__) - {"Schedule", "Lambda"}
    assert all(issubclass(cls, schedules.Schedule) for cls in schedule_constructors().values())
    with pytest.raises(ExpressionError):
        parse_schedule(b"OneCycle(0.1, total_steps=10)")


def test_default_steps_follow_the_schedule():
    assert default_steps(parse_schedule("OneCycle(0.1, total_steps=500)")) == 501
    assert default_steps(parse_schedule("Warmup(CosineAnnealing(0.1, T_max=90), warmup_steps=10)")) == 101
    assert default_steps(parse_schedule("ExponentialDecay(0.1, gamma=0.9)")) == 1000


# ------------------------------------------------------------------------------------------------
# python -m lrcore plot
# ------------------------------------------------------------------------------------------------
def test_plot_command_in_process(mpl, tmp_path, capsys):
    path = tmp_path / "warmup.png"
    status = plot_main(["Warmup(CosineAnnealing(0.1, T_max=100), warmup_steps=10)", "-o", str(path),
                        "--steps", "120"])
    assert status == 0
    assert_drawn_png(path)
    assert "120 steps" in capsys.readouterr().out
    both = tmp_path / "both.png"
    assert plot_main(["OneCycle(0.1, total_steps=100)", "Constant(0.05)", "-o", str(both),
                      "--label", "one cycle", "--label", "constant", "--log", "--title", "two"]) == 0
    assert_drawn_png(both)


@pytest.mark.parametrize("argv, match", [
    (["__import__('os').system('echo hacked')"], "bad schedule expression"),
    (["OneCycle(0.1, total_steps=10**10**10)"], "arithmetic"),
    (["OneCycle(0.1, total_steps=10)", "--steps", "0"], "--steps"),
    (["OneCycle(0.1, total_steps=10)", "--label", "a", "--label", "b"], "--label"),
])
def test_plot_command_rejects_bad_input_with_status_2(mpl, tmp_path, capsys, argv, match):
    path = tmp_path / "never.png"
    assert plot_main([*argv, "-o", str(path)]) == 2
    captured = capsys.readouterr()
    assert match in captured.err and "Traceback" not in captured.err
    assert "hacked" not in captured.out
    assert not path.exists()


def test_python_m_lrcore_plot(mpl, tmp_path):
    if importlib.util.find_spec("lrcore.__main__") is None:
        pytest.skip("lrcore/__main__.py (the python -m lrcore entry point) is not in this tree")
    path = tmp_path / "onecycle.png"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-m", "lrcore", "plot", "OneCycle(0.1, total_steps=1000)", "-o",
                           str(path)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert_drawn_png(path)
    bad = subprocess.run([sys.executable, "-m", "lrcore", "plot", "os.system('true')", "-o", str(path)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2
    assert "attribute access" in bad.stderr and "Traceback" not in bad.stderr
