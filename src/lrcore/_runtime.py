"""Runtime controls: kernel variant (instruction set), threads and denormal mode."""

from __future__ import annotations

from . import _core

__all__ = [
    "available_isas",
    "compiled_isas",
    "get_flush_denormals",
    "get_num_threads",
    "isa",
    "set_flush_denormals",
    "set_isa",
    "set_num_threads",
]


def isa() -> str:
    """Name of the kernel variant in use: ``"avx512"``, ``"avx2"`` or ``"baseline"``.

    The best variant the CPU supports is chosen on first use, unless the
    environment variable ``LRCORE_ISA`` names one (an unknown or unsupported
    name raises instead of falling back silently).
    """
    return _core.isa()


def available_isas() -> list[str]:
    """The kernel variants this CPU can run, best first (always ends with ``"baseline"``)."""
    return _core.available_isas()


def compiled_isas() -> list[str]:
    """The kernel variants compiled into this build, whether or not this CPU can run them."""
    return _core.compiled_isas()


def set_isa(name: str) -> None:
    """Use the named kernel variant from now on.

    Raises:
        ValueError: ``name`` is not a variant of this build.
        RuntimeError: this CPU cannot run it.
    """
    _core.set_isa(name)


def get_num_threads() -> int:
    """Threads a step may use, the calling thread included (default: CPUs available, or ``LRCORE_NUM_THREADS``)."""
    return _core.get_num_threads()


def set_num_threads(count: int) -> None:
    """Set the number of threads a step may use (``count >= 1``). Results do not depend on it."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"count must be an int, got {type(count).__name__}")
    _core.set_num_threads(count)


def get_flush_denormals() -> bool:
    """Whether kernels flush denormal numbers to zero (off by default)."""
    return _core.get_flush_denormals()


def set_flush_denormals(enabled: bool) -> None:
    """Flush denormal inputs and results to zero inside the kernels (x86 FTZ/DAZ).

    Long runs can drive moment estimates into the denormal range, where x86
    arithmetic slows down many times over. With this on, such values become
    zero instead; the caller's floating-point mode is restored after each step.
    Off by default, which keeps results identical to torch and numpy.
    """
    _core.set_flush_denormals(bool(enabled))
