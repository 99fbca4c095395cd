"""The API reference, generated from the docstrings with pdoc: it must build without a warning
(pytest turns warnings into errors) and document every public name with its docstring."""

from __future__ import annotations

import pathlib

import pytest

import lrcore

pdoc = pytest.importorskip("pdoc", reason="pdoc builds the API reference (pip install pdoc)")


def test_the_api_reference_builds_and_documents_the_public_api(tmp_path: pathlib.Path) -> None:
    pdoc.pdoc("lrcore", output_directory=tmp_path)
    top = (tmp_path / "lrcore.html").read_text()
    for name in lrcore.__all__:
        if name.startswith("__") or name in {"checkpoint", "functional", "gradients", "plotting", "reference", "schedules"}:
            continue
        assert f'id="{name}"' in top, f"{name} is missing from the reference"
    # Docstrings derived from the rule descriptions reach the reference.
    assert lrcore.Adam.rule.summary.split(" (")[0] in top
    functional = (tmp_path / "lrcore" / "functional.html").read_text()
    assert "max_exp_avg_sqs" in functional and "beta2**t" in functional
    schedules = (tmp_path / "lrcore" / "schedules.html").read_text()
    assert 'id="CosineAnnealing"' in schedules
