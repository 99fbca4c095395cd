"""The package type-checks under ``mypy --strict`` with its own stubs, and the closed-form field annotations are right."""

from __future__ import annotations

import shutil
import typing
from pathlib import Path

import pytest

from lrcore import _core, _stubs, schedules
from lrcore.schedules import _closed_form

PACKAGE = _stubs.PACKAGE_DIRECTORY


def test_mypy_strict_passes_on_the_package(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api", reason="mypy is not installed")
    # mypy checks the package's sources, with _core.pyi for the compiled module. An installed
    # package sits in site-packages, which mypy refuses as a search path, so the sources (and
    # stubs) are copied to a directory of their own first.
    sources = tmp_path / "src"
    shutil.copytree(PACKAGE, sources / "lrcore", ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__",
                                                                              "include", "lib"))
    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\nstrict = True\n"
        f"mypy_path = {sources}\n"
        "[mypy-matplotlib,matplotlib.*]\nignore_missing_imports = True\n"
        "[mypy-mpi4py,mpi4py.*]\nignore_missing_imports = True\n",
        encoding="utf-8",
    )
    stdout, stderr, status = api.run(["--config-file", str(config), "--cache-dir", str(tmp_path / "cache"),
                                      "--no-error-summary", "--show-error-codes", "-p", "lrcore"])
    assert status == 0, stdout + stderr


@pytest.mark.parametrize("name", [n for n in dir(_core.schedules) if not n.startswith("_")])
def test_closed_form_annotations_name_the_compiled_fields(name: str) -> None:
    """Each closed form annotates exactly its compiled type's fields, with the type its values have."""
    public = getattr(schedules, name)
    own = public.__dict__.get("__annotations__", {})
    annotated = [field for field in own if not field.startswith("_")]
    assert tuple(annotated) == getattr(_core.schedules, name)._fields
    # The annotations are strings (postponed evaluation); the names they use are the module's.
    hints = {field: eval(own[field], vars(_closed_form)) for field in annotated}  # noqa: S307 - our own source
    # Build one with its documented defaults where the signature has them.
    examples = {"Constant": (0.1,), "StepDecay": (0.1, 3), "MultiStepDecay": (0.1, [2, 4]),
                "ExponentialDecay": (0.1, 0.5), "InverseTimeDecay": (0.1, 0.5), "PolynomialDecay": (0.1, 5),
                "Linear": (0.1,), "CosineAnnealing": (0.1, 5), "CosineAnnealingWarmRestarts": (0.1, 5),
                "Cyclic": (0.1, 1.0), "CyclicMomentum": (), "OneCycle": (1.0, 10), "OneCycleMomentum": (10,),
                "InverseSqrt": (0.1, 4)}
    instance = public(*examples[name])
    for field in annotated:
        value = getattr(instance, field)
        hint = hints[field]
        origin = typing.get_origin(hint)
        if origin is typing.Literal:
            assert value in typing.get_args(hint), (field, value)
        elif origin is tuple:
            assert isinstance(value, tuple) and all(type(v) is int for v in value), (field, value)
        else:
            assert type(value) is hint, (field, value, hint)
