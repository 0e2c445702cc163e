"""Arithmetic expressions of BGMN .str files, evaluated without ``eval``.

BGMN lets any number be an expression over named parameters
(``z=zT/(layer*c0)``, ``E=(FE(1-p),C(p))``). Only what a structure needs is
supported: numbers, names, + - * / ^, parentheses and a few functions.
Refinement helpers (``ifthenelse``, ``GEWICHT[1]``, ``sk``) are rejected.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

# One-argument functions of BGMN's interpreter that can appear in structure values.
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt,
    "sqr": lambda v: v * v,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "exp": math.exp,
    "ln": math.log,
    "log": math.log10,
    "abs": abs,
    "min": min,
    "max": max,
}

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


class ExpressionError(ValueError):
    """An expression cannot be evaluated; the message says why."""


def evaluate(text: str, lookup: Callable[[str], float]) -> float:
    """Value of BGMN expression ``text``; ``lookup`` resolves names.

    Raises ExpressionError for syntax BGMN structures do not need, unknown
    functions, or arithmetic errors (division by zero, domain errors).
    """
    source = text.strip().replace("^", "**")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {text!r}") from exc

    def visit(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return visit(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            return lookup(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = visit(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](visit(node.left), visit(node.right))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and not node.keywords
            and node.args
        ):
            return float(_FUNCTIONS[node.func.id](*(visit(a) for a in node.args)))
        raise ExpressionError(f"unsupported syntax {ast.unparse(node)!r} in expression {text!r}")

    try:
        value = visit(tree)
    except (ZeroDivisionError, OverflowError, ValueError, TypeError) as exc:
        if isinstance(exc, ExpressionError):
            raise
        raise ExpressionError(f"cannot evaluate {text!r}: {exc}") from exc
    if not math.isfinite(value):
        raise ExpressionError(f"expression {text!r} is not finite")
    return value
