"""The dtypes lrcore steps besides float32 and float64: bfloat16 (from ml_dtypes) and float16,
whose arithmetic is float32, and the option that rounds them stochastically."""

from __future__ import annotations

import functools
from typing import Any, Optional

import numpy as np

__all__ = ["bfloat16", "is_16_bit", "rounding_seed"]


def is_16_bit(dtype: Any) -> bool:
    """Whether arrays of ``dtype`` are 16-bit floats lrcore steps with float32 math:
    ``ml_dtypes.bfloat16`` or ``numpy.float16``."""
    checked = np.dtype(dtype)
    return bool(checked == np.float16 or (checked.kind == "V" and checked.itemsize == 2
                                          and checked.name == "bfloat16"))


@functools.lru_cache(maxsize=None)
def bfloat16() -> "np.dtype[Any]":
    """numpy's bfloat16 dtype, from ml_dtypes (a dependency of lrcore)."""
    import ml_dtypes

    dtype: "np.dtype[Any]" = np.dtype(ml_dtypes.bfloat16)
    return dtype


def rounding_seed(stochastic_rounding: Any, seed: Any) -> Optional[int]:
    """The native step's ``rounding_seed``: ``seed`` with stochastic rounding, None without.
    Checks both (a bool, an int) and names them."""
    if not isinstance(stochastic_rounding, (bool, np.bool_)):
        raise TypeError(f"stochastic_rounding must be a bool, got {type(stochastic_rounding).__name__}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    return int(seed) if stochastic_rounding else None
