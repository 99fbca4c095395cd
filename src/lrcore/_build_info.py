"""Where an installed lrcore keeps its C++ API, for projects that compile against it.

A wheel of lrcore carries, inside the package directory, the public headers
(``include/lrcore/*.hpp``), the static kernel library (``lib/``) and a CMake
package (``lib/cmake/lrcore``), next to the Cython declarations
(``lrcore/cpp.pxd``). These functions locate them, as ``numpy.get_include()``
and ``pybind11.get_cmake_dir()`` do for their packages.

Examples:
    CMake, against the installed wheel::

        cmake -S . -B build -Dlrcore_DIR="$(python -c 'import lrcore; print(lrcore.get_cmake_dir())')"

    A compiler call::

        c++ -std=c++17 -I"$(python -c 'import lrcore; print(lrcore.get_include())')" app.cpp \\
            "$(python -c 'import lrcore; print(lrcore.get_library())')" -pthread
"""

from __future__ import annotations

import os
import sys

__all__ = ["get_cmake_dir", "get_include", "get_library", "get_library_dir"]


def _package_dirs() -> list[str]:
    # An editable install splits the package: Python sources stay in the
    # source tree while CMake-installed files (headers, library, CMake
    # package) land in site-packages; __path__ lists both.
    package = sys.modules[__name__.rpartition(".")[0]]
    return [os.path.abspath(path) for path in package.__path__]


def _find(relative: str, what: str) -> str:
    for directory in _package_dirs():
        candidate = os.path.join(directory, relative)
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(
        f"lrcore's {what} ({relative}) is not in this installation (searched: {', '.join(_package_dirs())}). "
        "It is installed by `pip install lrcore` (or `pip install .` from a source checkout); "
        "a source tree used without installing does not have it."
    )


def get_include() -> str:
    """The directory holding lrcore's C++ headers: add it to the include path and ``#include <lrcore/lrcore.hpp>``.

    Returns:
        An absolute path whose ``lrcore/`` subdirectory contains ``lrcore.hpp``.

    Raises:
        FileNotFoundError: this installation does not carry the headers.
    """
    return os.path.dirname(os.path.dirname(_find(os.path.join("include", "lrcore", "lrcore.hpp"), "C++ headers")))


def get_cmake_dir() -> str:
    """The directory of lrcore's CMake package, for ``lrcore_DIR`` or ``CMAKE_PREFIX_PATH``.

    With it, ``find_package(lrcore CONFIG REQUIRED)`` defines ``lrcore::lrcore``.

    Raises:
        FileNotFoundError: this installation does not carry the CMake package.
    """
    return os.path.dirname(_find(os.path.join("lib", "cmake", "lrcore", "lrcoreConfig.cmake"), "CMake package"))


def get_library_dir() -> str:
    """The directory holding the static kernel library (``liblrcore.a``, or ``lrcore.lib`` on Windows).

    Raises:
        FileNotFoundError: this installation does not carry the library.
    """
    return os.path.dirname(get_library())


def get_library() -> str:
    """The path of the static kernel library, to link into an extension or program.

    Code linking it must also link the platform's thread library (``-pthread``).

    Raises:
        FileNotFoundError: this installation does not carry the library.
    """
    name = "lrcore.lib" if sys.platform == "win32" else "liblrcore.a"
    return _find(os.path.join("lib", name), "static library")
