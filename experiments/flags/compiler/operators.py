"""The plain JsonLogic and flagd operators: implementations, arities and fast paths.

Every implementation takes already evaluated arguments and behaves like the
operator of panzi-json-logic 1.0.1 / flagd-core 1.0.0 with the same name, extra
arguments ignored, missing ones null. Special forms (`if`, `and`, `map`, ...)
live in `special_forms.py`; `var` and `missing` in `data_reads.py` and
`fractional` in `fractional_nodes.py`, since they need the data.
Operators: https://jsonlogic.com/operations.html, https://flagd.dev/reference/custom-operations/
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .data_reads import equals_path, in_path
from .flagd_ops import ends_with, parse_version, sem_ver, starts_with, version_compare
from .jsonlogic import (
    NAN,
    contains,
    fresh,
    greater_equal,
    greater_than,
    less_equal,
    less_than,
    log,
    loose_equals,
    merge,
    not_,
    substr,
    to_bool,
    to_number,
    to_string,
)

Impl = Callable[..., Any]
Fn = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Expr:
    """A compiled node: its closure, and its value when it is a constant."""

    fn: Fn
    const: bool = False
    value: Any = None
    path: tuple[str, ...] | None = None  # a `var` of an attribute path, for fused operators


def constant(value: Any) -> Expr:
    """A literal; lists are rebuilt on every call, as the interpreter does."""
    if isinstance(value, list):
        return Expr(lambda _s: fresh(value), True, value)
    return Expr(lambda _s: value, True, value)


def _ne(a: Any = None, b: Any = None, *_ignored: Any) -> bool:
    return not loose_equals(a, b)


def _strict_eq(a: Any = None, b: Any = None, *_ignored: Any) -> Any:
    return a == b


def _strict_ne(a: Any = None, b: Any = None, *_ignored: Any) -> Any:
    return a != b


def _not(a: Any = None, *_ignored: Any) -> bool:
    return not_(a)


def _truthy(a: Any = None, *_ignored: Any) -> bool:
    return to_bool(a)


def _add(*args: Any) -> Any:
    total: Any = 0
    for arg in args:
        total += to_number(arg)
    return total


def _mul(*args: Any) -> Any:
    product: Any = 1
    for arg in args:
        product *= to_number(arg)
    return product


def _sub(a: Any = None, b: Any = None, *_ignored: Any) -> Any:
    return -to_number(a) if b is None else to_number(a) - to_number(b)


def _div(a: Any = None, b: Any = None, *_ignored: Any) -> Any:
    return to_number(a) / to_number(b)


def _mod(a: Any = None, b: Any = None, *_ignored: Any) -> Any:
    return to_number(a) % to_number(b)


def _min(*args: Any) -> Any:
    return min(to_number(arg) for arg in args) if args else NAN


def _max(*args: Any) -> Any:
    return max(to_number(arg) for arg in args) if args else NAN


def _cat(*args: Any) -> str:
    return "".join([to_string(arg) for arg in args])


def _between(compare: Callable[[Any, Any], bool]) -> Impl:
    """`<`-like operators: two arguments, or three for "between" (a < b < c)."""

    def op(a: Any = None, b: Any = None, c: Any = None, *_ignored: Any) -> bool:
        if c is None:
            return compare(a, b)
        return compare(a, b) and compare(b, c)

    return op


PURE: dict[str, Impl] = {
    "==": loose_equals,
    "!=": _ne,
    "===": _strict_eq,
    "!==": _strict_ne,
    "<": _between(less_than),
    ">": _between(greater_than),
    "<=": _between(less_equal),
    ">=": _between(greater_equal),
    "!": _not,
    "!!": _truthy,
    "+": _add,
    "*": _mul,
    "-": _sub,
    "/": _div,
    "%": _mod,
    "in": contains,
    "min": _min,
    "max": _max,
    "cat": _cat,
    "substr": substr,
    "merge": merge,
    "starts_with": starts_with,
    "ends_with": ends_with,
    "sem_ver": sem_ver,
}
"""Operators without side effects whose result depends only on their arguments."""

EFFECTFUL: dict[str, Impl] = {"log": log}

DATA_OPERATORS = frozenset({"var", "missing", "missing_some", "fractional"})

OPERATIONS = frozenset(PURE) | frozenset(EFFECTFUL) | DATA_OPERATORS
"""The operation table of flagd-core (special forms are handled before it is consulted)."""

# (min, max) argument counts accepted by strict validation; None = unbounded.
# Based on the flagd targeting schema (https://flagd.dev/schema/v0/targeting.json),
# widened where flagd-core accepts more (an `if` with else-if pairs, `>` between).
ARITY: dict[str, tuple[int, int | None]] = {
    **dict.fromkeys(("==", "!=", "===", "!==", "/", "%", "in"), (2, 2)),
    **dict.fromkeys(("<", ">", "<=", ">=", "substr"), (2, 3)),
    **dict.fromkeys(("!", "!!", "log"), (1, 1)),
    **dict.fromkeys(("+", "*", "min", "max", "cat", "merge", "and", "or", "if", "?:"), (1, None)),
    **dict.fromkeys(("filter", "map", "all", "some", "none", "starts_with", "ends_with"), (2, 2)),
    "-": (1, 2),
    "var": (0, 2),
    "missing": (0, None),
    "missing_some": (2, 2),
    "reduce": (2, 3),
    "sem_ver": (3, 3),
    "fractional": (1, None),
}


def call(impl: Impl, fns: list[Fn]) -> Fn:
    """A closure evaluating `fns` left to right and applying `impl` to the results."""
    if not fns:
        return lambda _s: impl()
    if len(fns) == 1:
        (f0,) = fns
        return lambda s: impl(f0(s))
    if len(fns) == 2:
        f0, f1 = fns
        return lambda s: impl(f0(s), f1(s))
    if len(fns) == 3:
        f0, f1, f2 = fns
        return lambda s: impl(f0(s), f1(s), f2(s))
    return lambda s: impl(*[f(s) for f in fns])


def equals_constant(f: Fn, constant: Any, *, constant_first: bool, negate: bool) -> Fn:
    """`==` / `!=` against a constant scalar: plain `==` when the other side has its type."""
    kind = type(constant)

    def eq(s: Any) -> bool:
        value = f(s)
        if type(value) is kind:
            return (value == constant) is not negate
        pair = (constant, value) if constant_first else (value, constant)
        return loose_equals(*pair) is not negate

    return eq


def in_constant(f: Fn, haystack: list[Any]) -> Fn:
    """`in` with a constant list of strings: a set lookup for string needles."""
    members = frozenset(haystack)

    def member(s: Any) -> bool:
        needle = f(s)
        if type(needle) is str:
            return needle in members
        return contains(needle, haystack)

    return member


def cat_prefix(prefix: str, f: Fn) -> Fn:
    """`cat` of a constant string and one value (`$flagd.flagKey` + a bucketing variable)."""

    def cat(s: Any) -> str:
        value = f(s)
        return prefix + (value if type(value) is str else to_string(value))

    return cat


def sem_ver_constant(f: Fn, operator: Any, right: Any) -> Fn | None:
    """`sem_ver` with a constant operator and right-hand version: parse them once.

    None when one of them is invalid (then the generic path returns null).
    """
    compare = version_compare(operator)
    version = parse_version(right)
    if compare is None or version is None:
        return None

    def check(s: Any) -> bool | None:
        left = parse_version(f(s))
        return None if left is None else compare(left, version)

    return check


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float)


def _equals_fast_path(left: Expr, right: Expr, *, negate: bool) -> Fn | None:
    """`==` / `!=` with one constant scalar side, fused with an attribute read if possible."""
    for other, constant, constant_first in ((left, right, False), (right, left, True)):
        if constant.const and _scalar(constant.value) and not other.const:
            if other.path is not None:
                return equals_path(
                    other.path, constant.value, constant_first=constant_first, negate=negate
                )
            return equals_constant(
                other.fn, constant.value, constant_first=constant_first, negate=negate
            )
    return None


def fast_path(op: str, exprs: list[Expr]) -> Fn | None:
    if op in ("==", "!=") and len(exprs) == 2:
        return _equals_fast_path(exprs[0], exprs[1], negate=op == "!=")
    if op == "in" and len(exprs) == 2 and exprs[1].const and not exprs[0].const:
        haystack, needle = exprs[1].value, exprs[0]
        if isinstance(haystack, list) and all(isinstance(item, str) for item in haystack):
            if needle.path is not None:
                return in_path(needle.path, haystack)
            return in_constant(needle.fn, haystack)
    if op == "cat" and len(exprs) == 2 and exprs[0].const and isinstance(exprs[0].value, str):
        return cat_prefix(exprs[0].value, exprs[1].fn)
    if op == "sem_ver" and len(exprs) == 3 and exprs[1].const and exprs[2].const:
        return sem_ver_constant(exprs[0].fn, exprs[1].value, exprs[2].value)
    return None
