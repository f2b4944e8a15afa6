"""Compiled operators that read the evaluation data: `var`, `missing` and fused lookups.

At the root of a rule the data is flagd's context: the caller's attributes plus
`targetingKey` and `$flagd` (`flagKey`, `timestamp`), see
https://flagd.dev/reference/flag-definitions/#evaluation-context. Inside `map`,
`filter`, `reduce`, `all`, `some` and `none` it is the current item instead.
A `var` with a constant path at the root becomes a direct lookup; the full
context dict is only built when a rule asks for it as a whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .jsonlogic import (
    NUMERIC,
    contains,
    fresh,
    loose_equals,
    missing,
    missing_some,
    to_string,
    var,
    walk,
)

Fn = Callable[[Any], Any]


State = list[Any]
"""The root data of one evaluation, a list because one is built per evaluation:
`[targeting key, attributes, now or None, flag key, $flagd dict or None, context or None]`.
Read it through the helpers below; closures use the indexes directly."""


def new_state(
    flag_key: str, targeting_key: str | None, attributes: Mapping[str, Any], now: int | None = None
) -> State:
    """The state of one evaluation of `flag_key`; `now` fixes `$flagd.timestamp`."""
    return [targeting_key, attributes, now, flag_key, None, None]


def timestamp(s: State) -> int:
    """`$flagd.timestamp`: the evaluation time in Unix seconds, read once per evaluation."""
    if s[2] is None:
        s[2] = int(time.time())
    now: int = s[2]
    return now


def flagd(s: State) -> dict[str, Any]:
    """The `$flagd` object: `flagKey` and `timestamp`."""
    if s[4] is None:
        s[4] = {"flagKey": s[3], "timestamp": timestamp(s)}
    result: dict[str, Any] = s[4]
    return result


def context(s: State) -> dict[str, Any]:
    """The whole context as flagd-core builds it (attributes, `$flagd`, `targetingKey`)."""
    if s[5] is None:
        data = dict(s[1])
        data["$flagd"] = flagd(s)
        data["targetingKey"] = s[0]
        s[5] = data
    result: dict[str, Any] = s[5]
    return result


def _plain(prop: str) -> bool:
    """A path step that only a dict can follow (no list index, no `length`)."""
    if prop == "length":
        return False
    try:
        int(prop, 10)
    except ValueError:
        return True
    return False


def _root_lookup(props: Sequence[str], flag_key: str) -> Fn:
    """A reader of a constant dotted path at the root of the context."""
    head, rest = props[0], tuple(props[1:])
    if head == "$flagd" and rest == ("flagKey",):
        return lambda _s: flag_key
    if head == "$flagd" and rest == ("timestamp",):
        return timestamp
    if head == "$flagd":
        base: Fn = flagd
    elif head == "targetingKey":
        base = lambda s: s[0]  # noqa: E731
    elif not rest:
        return lambda s: s[1].get(head)
    elif len(rest) == 1 and _plain(rest[0]):
        (prop,) = rest

        def nested(s: Any) -> Any:
            data = s[1].get(head)
            return data.get(prop) if isinstance(data, dict) else None

        return nested
    else:
        return lambda s: walk(s[1].get(head), rest)
    if not rest:
        return base
    return lambda s: walk(base(s), rest)


def attribute_path(key: Any, *, root: bool) -> tuple[str, ...] | None:
    """The path of a `var` that reads an attribute one or two levels deep (`region`,
    `features.s2s`) at the root, for the fused operators below; None otherwise."""
    if not root or not isinstance(key, str) or not key:
        return None
    props = tuple(key.split("."))
    if props[0] in ("$flagd", "targetingKey") or len(props) > 2:
        return None
    return props if all(_plain(prop) for prop in props[1:]) else None


def equals_path(path: tuple[str, ...], constant: Any, *, constant_first: bool, negate: bool) -> Fn:
    """`==` / `!=` of an attribute path and a constant scalar, reading and comparing inline."""
    kind, head = type(constant), path[0]

    def compare(value: Any) -> bool:
        pair = (constant, value) if constant_first else (value, constant)
        return loose_equals(*pair) is not negate

    if len(path) == 1:

        def eq_top(s: Any) -> bool:
            value = s[1].get(head)
            if type(value) is kind:
                return (value == constant) is not negate
            return compare(value)

        return eq_top
    prop = path[1]

    def eq_nested(s: Any) -> bool:
        value = s[1].get(head)
        value = value.get(prop) if isinstance(value, dict) else None
        if type(value) is kind:
            return (value == constant) is not negate
        return compare(value)

    return eq_nested


def in_path(path: tuple[str, ...], haystack: list[str]) -> Fn:
    """`in` of an attribute path and a constant list of strings: a set lookup for strings."""
    members, head = frozenset(haystack), path[0]
    prop = path[1] if len(path) > 1 else None

    def member(s: Any) -> bool:
        value = s[1].get(head)
        if prop is not None:
            value = value.get(prop) if isinstance(value, dict) else None
        if type(value) is str:
            return value in members
        return contains(value, haystack)

    return member


def _with_default(read: Fn, default: Fn | None, default_value: Any) -> Fn:
    if default is not None:

        def read_or_dynamic(s: Any) -> Any:
            fallback = default(s)  # arguments are evaluated before the lookup
            value = read(s)
            return fallback if value is None else value

        return read_or_dynamic
    if default_value is None:
        return read

    def read_or_constant(s: Any) -> Any:
        value = read(s)
        return fresh(default_value) if value is None else value

    return read_or_constant


def _generic_var(key: Any, default: Fn | None, default_value: Any, *, root: bool) -> Fn:
    """`var` for the whole data or a numeric key, where the default is not a plain fallback."""
    if default is None:
        if root:
            return lambda s: var(context(s), key, fresh(default_value))
        return lambda d: var(d, key, fresh(default_value))
    if root:
        return lambda s: var(context(s), key, default(s))
    return lambda d: var(d, key, default(d))


def var_fn(key: Any, default: Fn | None, default_value: Any, *, root: bool, flag_key: str) -> Fn:
    """`var` with a constant key; `default` is the closure of a non-constant default."""
    if key is None or key == "" or isinstance(key, NUMERIC):
        return _generic_var(key, default, default_value, root=root)
    props = to_string(key).split(".")
    read = _root_lookup(props, flag_key) if root else lambda d: walk(d, props)
    return _with_default(read, default, default_value)


def is_constant_var(key: Any, *, root: bool) -> bool:
    """Whether `var key` has one value per flag (only `$flagd.flagKey` at the root)."""
    return root and key == "$flagd.flagKey"


def dynamic_var_fn(fns: list[Fn], *, root: bool) -> Fn:
    """`var` whose key is computed: the generic lookup over the whole data."""
    if root:
        return lambda s: var(context(s), *[f(s) for f in fns])
    return lambda d: var(d, *[f(d) for f in fns])


def missing_fn(op: str, fns: list[Fn], *, root: bool) -> Fn:
    """`missing` / `missing_some` over the root context or the current item."""
    impl = missing if op == "missing" else missing_some
    if root:
        return lambda s: impl(context(s), *[f(s) for f in fns])
    return lambda d: impl(d, *[f(d) for f in fns])
