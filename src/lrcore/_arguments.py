"""Argument checks shared by lrcore's Python constructors: each returns the checked value or raises
TypeError (wrong type) or ValueError (out of range) naming the argument."""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any, Iterable

__all__ = ["choice", "in_range", "integer", "non_negative", "positive", "real"]


def real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    return number


def non_negative(name: str, value: Any) -> float:
    number = real(name, value)
    if number < 0.0:
        raise ValueError(f"{name} must be >= 0, got {number}")
    return number


def positive(name: str, value: Any) -> float:
    number = real(name, value)
    if number <= 0.0:
        raise ValueError(f"{name} must be > 0, got {number}")
    return number


def in_range(name: str, value: Any, low: float, high: float, *, low_open: bool = False,
             high_open: bool = False) -> float:
    number = real(name, value)
    if number > high or number < low or (low_open and number == low) or (high_open and number == high):
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {left}{low}, {high}{right}, got {number}")
    return number


def integer(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got bool")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {number}")
    return number


def choice(name: str, value: Any, options: Iterable[str]) -> str:
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value
