"""Schedules written as Python-like expressions, parsed safely (for ``python -m lrcore plot``).

``OneCycle(0.1, total_steps=1000)`` or
``Warmup(CosineAnnealing(0.1, T_max=100), warmup_steps=10)`` is parsed with
:mod:`ast` and built by walking the tree; nothing is ever evaluated as
Python. Accepted: calls of lrcore schedule constructors (by their bare
names), with positional and keyword arguments that are numeric literals (an
optional leading ``-`` or ``+``), ``True``/``False``/``None``, short string
literals (``mode="triangular2"``), lists or tuples of those, and nested
constructor calls. Everything else (other names, attribute access,
arithmetic, subscripts, lambdas, comprehensions, ``**kwargs``) is rejected
with an :class:`ExpressionError` that points at the offending part.
"""

from __future__ import annotations

import ast
from typing import Any, Dict

__all__ = ["ExpressionError", "parse_schedule", "schedule_constructors"]

#: Longest accepted expression, in characters; also bounds the work parsing can do.
MAX_LENGTH = 2000
#: Deepest accepted nesting of calls, lists and tuples.
MAX_DEPTH = 20
#: Integer literals beyond this magnitude are rejected (no schedule needs them; C++ takes 64-bit values).
MAX_INTEGER = 2**53
MAX_STRING = 64

# Schedules that take a Python function, or are abstract, cannot be written as an expression.
_EXCLUDED = {"Schedule", "Lambda"}


class ExpressionError(ValueError):
    """A schedule expression that is malformed or not allowed; the message says why and where."""


def schedule_constructors() -> Dict[str, Any]:
    """The constructors an expression may call: ``{name: class}``."""
    from . import schedules

    return {name: getattr(schedules, name) for name in schedules.__all__
            if name not in _EXCLUDED and isinstance(getattr(schedules, name), type)}


def parse_schedule(text: str) -> Any:
    """Builds the schedule an expression describes.

    Args:
        text: e.g. ``"OneCycle(0.1, total_steps=1000)"``.

    Returns:
        The schedule (an instance of :class:`lrcore.schedules.Schedule`).

    Raises:
        ExpressionError: (a ValueError) the text is not a valid, allowed
            schedule expression, or a constructor rejected its arguments.

    Examples:
        >>> parse_schedule("Warmup(CosineAnnealing(0.1, T_max=100), warmup_steps=10)")
        Warmup(schedule=CosineAnnealing(lr=0.1, T_max=100, eta_min=0.0), warmup_steps=10, start_factor=0.0)
    """
    if not isinstance(text, str):
        raise ExpressionError(f"a schedule expression must be a string, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise ExpressionError("the schedule expression is empty; write e.g. OneCycle(0.1, total_steps=1000)")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the schedule expression is too long ({len(text)} characters, at most {MAX_LENGTH})")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        where = f" at column {error.offset}" if error.offset else ""
        raise ExpressionError(f"invalid syntax{where}: {error.msg}\n{_pointer(text, (error.offset or 1) - 1)}") \
            from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise ExpressionError(f"cannot parse the schedule expression: {error}") from None
    builder = _Builder(text, schedule_constructors())
    if not isinstance(tree.body, ast.Call):
        raise builder.error(tree.body, "expected a schedule constructor such as OneCycle(0.1, total_steps=1000)")
    return builder.build(tree.body, 0)


def _pointer(text: str, column: int) -> str:
    column = max(0, min(column, len(text)))
    return f"  {text}\n  {' ' * column}^"


class _Builder:
    def __init__(self, text: str, constructors: Dict[str, Any]) -> None:
        self.text = text
        self.constructors = constructors

    def error(self, node: ast.AST, message: str) -> ExpressionError:
        column = getattr(node, "col_offset", None)
        if column is None:
            return ExpressionError(message)
        return ExpressionError(f"{message} (column {column + 1})\n{_pointer(self.text, column)}")

    def build(self, node: ast.AST, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.error(node, f"the expression is nested too deeply (more than {MAX_DEPTH} levels)")
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        if isinstance(node, ast.Constant):
            return self._constant(node, node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = node.operand
            if (isinstance(operand, ast.Constant) and isinstance(operand.value, (int, float))
                    and not isinstance(operand.value, bool)):
                value = self._constant(operand, operand.value)
                return -value if isinstance(node.op, ast.USub) else value
            raise self.error(node, "a sign may only precede a number")
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.build(item, depth + 1) for item in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        raise self.error(node, f"{self._describe(node)} is not allowed here; only schedule constructors, numbers, "
                               "True/False/None, short strings and lists or tuples of those are accepted")

    def _call(self, node: ast.Call, depth: int) -> Any:
        if not isinstance(node.func, ast.Name):
            raise self.error(node.func, f"{self._describe(node.func)} cannot be called; call a schedule by its name, "
                                        "e.g. CosineAnnealing(0.1, T_max=100)")
        name = node.func.id
        constructor = self.constructors.get(name)
        if name == "Lambda":
            raise self.error(node.func, "Lambda takes a Python function, which an expression cannot hold")
        if constructor is None:
            known = ", ".join(sorted(self.constructors))
            raise self.error(node.func, f"{name!r} is not an lrcore schedule; known schedules: {known}")
        args = []
        for argument in node.args:
            if isinstance(argument, ast.Starred):
                raise self.error(argument, "*arguments are not allowed")
            args.append(self.build(argument, depth + 1))
        kwargs: Dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                raise self.error(keyword.value, "**arguments are not allowed")
            kwargs[keyword.arg] = self.build(keyword.value, depth + 1)
        try:
            return constructor(*args, **kwargs)
        except (TypeError, ValueError, OverflowError) as error:
            raise self.error(node, f"{name}: {error}") from None

    def _constant(self, node: ast.AST, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            if abs(value) > MAX_INTEGER:
                raise self.error(node, f"the integer {_short_number(value)} is too large (at most 2**53)")
            return value
        if isinstance(value, float):
            return value
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                raise self.error(node, f"string literals are limited to {MAX_STRING} characters")
            return value
        raise self.error(node, f"{type(value).__name__} literals are not allowed; use real numbers")

    @staticmethod
    def _describe(node: ast.AST) -> str:
        if isinstance(node, ast.Name):
            return f"the name {node.id!r}"
        if isinstance(node, ast.Attribute):
            return "attribute access"
        if isinstance(node, ast.BinOp):
            return "arithmetic (write the number itself, e.g. 1e-3)"
        if isinstance(node, ast.Lambda):
            return "a lambda"
        return f"a {type(node).__name__} expression"


def _short_number(value: int) -> str:
    digits = str(value) if value.bit_length() < 200 else f"with about {int(value.bit_length() * 0.30103)} digits"
    return digits
