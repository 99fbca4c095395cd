"""The command line entry points and the distribution's metadata (version, license)."""

from __future__ import annotations

import importlib.metadata
import os
import pathlib
import shutil
import subprocess
import sys

import lrcore


def test_python_m_lrcore_version_names_the_version_and_the_kernels():
    out = subprocess.run([sys.executable, "-m", "lrcore", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith(f"lrcore {lrcore.__version__} (kernels: {lrcore.isa()}")


def test_the_lrcore_command_is_installed_and_runs_the_same_commands():
    # Console scripts are installed next to the interpreter of the environment.
    script = shutil.which("lrcore", path=os.path.dirname(sys.executable))
    assert script is not None, "the lrcore console script is not installed"
    out = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith(f"lrcore {lrcore.__version__}")
    helped = subprocess.run([script, "--help"], capture_output=True, text=True, check=True)
    assert "bench" in helped.stdout and "plot" in helped.stdout and helped.stdout.startswith("usage: lrcore")


def test_the_distribution_ships_the_license_and_declares_it():
    metadata = importlib.metadata.metadata("lrcore")
    assert metadata["License-Expression"] == "BSD-3-Clause"
    files = [f for f in importlib.metadata.files("lrcore") or [] if f.name == "LICENSE"]
    assert files, "LICENSE is not in the installed distribution"
    shipped = pathlib.Path(files[0].locate()).read_text()
    assert "BSD 3-Clause License" in shipped and "Redistribution and use in source and binary forms" in shipped


def test_the_changelog_has_an_entry_for_the_installed_version():
    text = (pathlib.Path(__file__).resolve().parents[1] / "CHANGELOG.md").read_text()
    assert f"\n## {lrcore.__version__} (" in text
