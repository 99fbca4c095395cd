"""Runs the C++ test suite (tests/cpp, registered with ctest) from pytest.

Configures and builds the source tree with plain CMake in a temporary
directory, then runs ctest: the kernel tests against a scalar reference on
every ISA, the API tests, and the install + find_package consumer build of
examples/cpp. Skips when the source tree, CMake or a C++ compiler is missing
(e.g. when only the installed package is being tested).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE_DIR = Path(__file__).resolve().parents[1]


def _tool(name: str, python_package: str) -> str | None:
    """A build tool from PATH, or from the pip package that ships it (cmake, ninja)."""
    found = shutil.which(name)
    if found:
        return found
    try:
        module = __import__(python_package)
    except ImportError:
        return None
    directory = getattr(module, "CMAKE_BIN_DIR", None) or getattr(module, "BIN_DIR", None)
    candidate = Path(directory, name) if directory else None
    return str(candidate) if candidate and candidate.exists() else None


def _run(command: list[str], what: str, timeout: float) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{what} failed ({result.returncode}): {' '.join(command)}\n{output[-6000:]}"
    return output


@pytest.mark.slow
def test_cpp_suite(tmp_path):
    if not (SOURCE_DIR / "CMakeLists.txt").exists() or not (SOURCE_DIR / "tests" / "cpp").is_dir():
        pytest.skip("the lrcore source tree is not available")
    cmake = _tool("cmake", "cmake")
    if cmake is None:
        pytest.skip("cmake is not installed")
    ctest = str(Path(cmake).with_name("ctest"))
    if not Path(ctest).exists():
        pytest.skip("ctest is not installed next to cmake")
    if not any(shutil.which(c) for c in (os.environ.get("CXX") or "c++", "g++", "clang++")):
        pytest.skip("no C++ compiler found")

    build = tmp_path / "build"
    configure = [cmake, "-S", str(SOURCE_DIR), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                 "-DLRCORE_BUILD_TESTS=ON", "-DLRCORE_INSTALL=ON"]
    ninja = _tool("ninja", "ninja")
    if ninja is not None:
        configure += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
    _run(configure, "configure", timeout=120)
    _run([cmake, "--build", str(build), "--parallel", "2"], "build", timeout=600)
    output = _run([ctest, "--test-dir", str(build), "--output-on-failure", "--timeout", "600"], "ctest",
                  timeout=900)
    assert "100% tests passed" in output, output[-6000:]
    for name in ("cpp.kernels", "cpp.api", "cpp.install_consumer"):
        assert name in output, f"{name} did not run:\n{output[-6000:]}"
