"""Closures of JsonLogic's special forms: `if` chains, `and` / `or`, and the iterating
operators (`filter`, `map`, `reduce`, `all`, `some`, `none`), whose body sees each item.

Semantics of panzi-json-logic 1.0.1 (https://jsonlogic.com/operations.html).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .jsonlogic import not_, to_bool

Fn = Callable[[Any], Any]
NOTHING: tuple[None, None, None] = (None, None, None)

EMPTY_ITERATION: dict[str, Any] = {
    "filter": [],
    "map": [],
    "reduce": None,
    "all": False,
    "some": False,
    "none": True,
}
"""What an iterating operator without arguments gives."""


def choose(pairs: list[tuple[Fn, Fn]], otherwise: Fn) -> Fn:
    """The closure of an `if` chain: the first branch whose condition is truthy."""
    if len(pairs) == 1:
        ((cond, then),) = pairs

        def one(s: Any) -> Any:
            value = cond(s)
            if value is True or (value is not False and to_bool(value)):
                return then(s)
            return otherwise(s)

        return one

    def chain(s: Any) -> Any:
        for cond, then in pairs:
            value = cond(s)
            if value is True or (value is not False and to_bool(value)):
                return then(s)
        return otherwise(s)

    return chain


def logic(op: str, fns: list[Fn], tail: bool) -> Fn:
    """`and` returns the first falsy operand, `or` the first truthy one, else the last."""
    stop = not_ if op == "and" else to_bool

    def run(s: Any) -> Any:
        current: Any = NOTHING if tail else None
        for f in fns:
            current = f(s)
            if stop(current[0] if tail else current):
                return current
        return current

    return run


def raise_after(fns: list[Fn], error: Callable[[], Exception]) -> Fn:
    """Evaluate the arguments (as the interpreter does), then raise a new `error()`."""

    def fail(s: Any) -> Any:
        for f in fns:
            f(s)
        raise error()

    return fail


def _filter(items: Fn, body: Fn, _init: Any, argc: int) -> Fn:
    if argc < 2:
        return lambda _s: []

    def run(s: Any) -> Any:
        values = items(s)
        if not isinstance(values, list):
            return []
        return [item for item in values if to_bool(body(item))]

    return run


def _map(items: Fn, body: Fn, _init: Any, _argc: int) -> Fn:
    def run(s: Any) -> Any:
        values = items(s)
        return [body(item) for item in values] if isinstance(values, list) else []

    return run


def _reduce(items: Fn, body: Fn, init: Any, _argc: int) -> Fn:
    def run(s: Any) -> Any:
        values = items(s)
        if not isinstance(values, list):
            return init  # the raw third argument, not evaluated
        context: dict[str, Any] = {"accumulator": init}
        for item in values:
            context["current"] = item
            context["accumulator"] = body(context)
        return context["accumulator"]

    return run


def _quantifier(op: str) -> Callable[[Fn, Fn, Any, int], Fn]:
    def build(items: Fn, body: Fn, _init: Any, argc: int) -> Fn:
        if argc < 2:
            empty = op == "none"
            return lambda _s: empty

        def run(s: Any) -> bool:
            values = items(s)
            if not isinstance(values, list):
                return op == "none"
            if op == "all":
                return bool(values) and all(to_bool(body(item)) for item in values)
            found = any(to_bool(body(item)) for item in values)
            return found if op == "some" else not found

        return run

    return build


ITERATORS: dict[str, Callable[[Fn, Fn, Any, int], Fn]] = {
    "filter": _filter,
    "map": _map,
    "reduce": _reduce,
    "all": _quantifier("all"),
    "some": _quantifier("some"),
    "none": _quantifier("none"),
}
