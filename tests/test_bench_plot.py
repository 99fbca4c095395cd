"""``python -m lrcore bench --plot``: the files it writes, what it draws, and the missing-matplotlib path."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree

import pytest

import lrcore
from lrcore.__main__ import main as lrcore_main
from lrcore.bench import _cli
from lrcore.bench._runner import CaseResult, ContenderResult

TINY = ["--quick", "--seconds", "0.002", "--threads", "1", "--rules", "adam", "--sizes", "1000",
        "--against", "numpy"]


pytestmark = pytest.mark.usefixtures("bench_environment")


def _case(rule: str, label: str, contenders: dict) -> CaseResult:
    case = CaseResult(rule, label, label, 1, 1000, "float32", 1, 28000, lrcore_seconds=1e-5, roof_seconds=8e-6,
                      lrcore_spread=0.05, roof_spread=0.1)
    for name, (status, seconds) in contenders.items():
        case.contenders[name] = ContenderResult(name, status, seconds=seconds, lrcore_seconds=1e-5 if seconds else None,
                                                spread=0.2, lrcore_spread=0.05)
    return case


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_tiny_run_writes_a_valid_plot(tmp_path, capsys, suffix):
    pytest.importorskip("matplotlib")
    path = tmp_path / f"bench{suffix}"
    status = lrcore_main(["bench", *TINY, "--plot", str(path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert f"Wrote {path}" in out
    data = path.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
    else:
        root = ElementTree.fromstring(data)
        assert root.tag.endswith("svg")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_plot_bench_draws_one_bar_per_case_and_timed_contender():
    pytest.importorskip("matplotlib")
    from lrcore.plotting import plot_bench

    cases = [
        _case("adam", "4096", {"numpy": ("ok", 3e-5), "torch-loop": ("ok", 9e-5)}),
        _case("adam", "64k", {"numpy": ("ok", 2e-5), "torch-loop": ("mismatch", None)}),
        _case("sgd", "4096", {"numpy": ("ok", 2e-5), "torch-loop": ("n/a", None)}),
        CaseResult("rmsprop", "4096", "4096", 1, 4096, "float32", 1, 0, status="FAILED", reason="boom"),
    ]
    figure = plot_bench(cases, title="synthetic")
    # One row per rule (adam, then sgd; the failed rmsprop case is left out), two panels each.
    adam_roof, adam_speed, sgd_roof, sgd_speed = figure.axes
    assert len(adam_roof.patches) == 2 and len(sgd_roof.patches) == 1
    assert len(adam_speed.patches) == 2 + 1            # numpy in both adam cases, torch-loop where it was timed
    assert len(sgd_speed.patches) == 1                 # torch-loop was not timed for sgd
    heights = sorted(round(p.get_height(), 6) for ax in (adam_roof, sgd_roof) for p in ax.patches)
    assert heights == [1.25, 1.25, 1.25]
    speedups = sorted(round(p.get_height(), 6) for ax in (adam_speed, sgd_speed) for p in ax.patches)
    assert speedups == [2.0, 2.0, 3.0, 9.0]
    # The first row's legend names every contender; a contender keeps its colour in every row.
    assert [t.get_text() for t in adam_speed.get_legend().get_texts()] == ["numpy", "torch-loop"]
    numpy_colours = {p.get_facecolor() for ax in (adam_speed, sgd_speed) for p in ax.patches
                     if round(p.get_height(), 6) in (2.0, 3.0)}
    assert len(numpy_colours) == 1
    assert [t.get_text() for t in adam_roof.get_xticklabels()] == ["4096", "64k"]
    assert adam_roof.get_ylabel().startswith("adam") and sgd_roof.get_ylabel().startswith("sgd")
    # error bars: one per bar in each panel
    from matplotlib.container import BarContainer

    def error_bars(ax):
        return sum(len(c.errorbar.lines[2][0].get_segments()) for c in ax.containers
                   if isinstance(c, BarContainer) and c.errorbar is not None)

    assert error_bars(adam_roof) + error_bars(sgd_roof) == 3
    assert error_bars(adam_speed) + error_bars(sgd_speed) == 4


def test_plot_bench_rejects_other_extensions(tmp_path):
    pytest.importorskip("matplotlib")
    from lrcore.plotting import plot_bench

    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        plot_bench([], tmp_path / "bench.pdf")


def test_without_matplotlib_plot_errors_before_timing(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError

    def no_timing(*args, **kwargs):
        raise AssertionError("nothing may be timed")

    monkeypatch.setattr(_cli, "run_case", no_timing)
    monkeypatch.setattr(_cli, "make_plan", no_timing)
    path = tmp_path / "bench.png"
    status = lrcore_main(["bench", *TINY, "--plot", str(path)])
    captured = capsys.readouterr()
    assert status == 2
    assert "pip install matplotlib" in captured.err and "--plot" in captured.err
    assert not path.exists()


def test_plot_with_a_wrong_extension_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_cli, "make_plan", lambda *a, **k: pytest.fail("nothing may be planned"))
    status = lrcore_main(["bench", *TINY, "--plot", str(tmp_path / "bench.jpg")])
    assert status == 2
    assert ".png or .svg" in capsys.readouterr().err
