"""Compiled operators that read the evaluation data: `var`, `missing`, `fractional`.

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
from dataclasses import dataclass
from typing import Any

from .fractional import (
    Bucketed,
    bucket,
    evaluate,
    parse_table,
    shorthand_key,
    split_id,
)
from .jsonlogic import NUMERIC, fresh, missing, missing_some, to_string, var, walk

Fn = Callable[[Any], Any]
Bucketer = Callable[[Any], Bucketed | None]


class EvalState:
    """What one evaluation of one flag sees at the root of its targeting rule."""

    __slots__ = ("_data", "_flagd", "_now", "attributes", "flag_key", "targeting_key")

    def __init__(
        self,
        flag_key: str,
        targeting_key: str | None,
        attributes: Mapping[str, Any],
        now: int | None = None,
    ) -> None:
        self.flag_key = flag_key
        self.targeting_key = targeting_key
        self.attributes = attributes
        self._now = now
        self._flagd: dict[str, Any] | None = None
        self._data: dict[str, Any] | None = None

    def timestamp(self) -> int:
        """`$flagd.timestamp`: the evaluation time in Unix seconds."""
        if self._now is None:
            self._now = int(time.time())
        return self._now

    def flagd(self) -> dict[str, Any]:
        if self._flagd is None:
            self._flagd = {"flagKey": self.flag_key, "timestamp": self.timestamp()}
        return self._flagd

    def data(self) -> dict[str, Any]:
        """The whole context as flagd-core builds it (attributes, `$flagd`, `targetingKey`)."""
        if self._data is None:
            data = dict(self.attributes)
            data["$flagd"] = self.flagd()
            data["targetingKey"] = self.targeting_key
            self._data = data
        return self._data


def _root_lookup(props: Sequence[str], flag_key: str) -> Fn:
    """A reader of a constant dotted path at the root of the context."""
    head, rest = props[0], tuple(props[1:])
    if head == "$flagd" and rest == ("flagKey",):
        return lambda _s: flag_key
    if head == "$flagd" and rest == ("timestamp",):
        return lambda s: s.timestamp()
    if head == "$flagd":
        base: Fn = lambda s: s.flagd()  # noqa: E731
    elif head == "targetingKey":
        base = lambda s: s.targeting_key  # noqa: E731
    elif not rest:
        return lambda s: s.attributes.get(head)
    else:
        return lambda s: walk(s.attributes.get(head), rest)
    if not rest:
        return base
    return lambda s: walk(base(s), rest)


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
            return lambda s: var(s.data(), key, fresh(default_value))
        return lambda d: var(d, key, fresh(default_value))
    if root:
        return lambda s: var(s.data(), key, default(s))
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
        return lambda s: var(s.data(), *[f(s) for f in fns])
    return lambda d: var(d, *[f(d) for f in fns])


def missing_fn(op: str, fns: list[Fn], *, root: bool) -> Fn:
    """`missing` / `missing_some` over the root context or the current item."""
    impl = missing if op == "missing" else missing_some
    if root:
        return lambda s: impl(s.data(), *[f(s) for f in fns])
    return lambda d: impl(d, *[f(d) for f in fns])


@dataclass(frozen=True, slots=True)
class SplitSite:
    """The static identity of one `fractional` node: its split id and bucketing unit."""

    split_id: str
    unit: str


def _fractional_parts(raw: Any) -> tuple[Any, list[Any]]:
    args = raw if isinstance(raw, list) else [raw]
    if args and not isinstance(args[0], list):
        return args[0], list(args[1:])
    return None, list(args)


def _var_names(node: Any, names: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _var_names(item, names)
    elif isinstance(node, dict):
        for op, value in node.items():
            if op == "var" and len(node) == 1:
                key = value[0] if isinstance(value, list) and value else value
                if isinstance(key, str) and key != "$flagd.flagKey" and key not in names:
                    names.append(key)
            else:
                _var_names(value, names)


def bucket_unit(bucket_expr: Any) -> str:
    """What a split buckets: `targetingKey` for the shorthand, else the variables it reads."""
    if bucket_expr is None or not isinstance(bucket_expr, str | dict):
        return "targetingKey"
    names: list[str] = []
    _var_names(bucket_expr, names)
    if names:
        return "+".join(names)
    return "constant" if isinstance(bucket_expr, str) else "expression"


def _fractional_nodes(node: Any, found: list[dict[str, Any]]) -> None:
    if isinstance(node, list):
        for item in node:
            _fractional_nodes(item, found)
    elif isinstance(node, dict):
        if len(node) == 1 and "fractional" in node:
            found.append(node)
        for value in node.values():
            _fractional_nodes(value, found)


def split_sites(flag_key: str, targeting: Any) -> dict[int, SplitSite]:
    """Split ids of every `fractional` node of a rule, keyed by node identity.

    Two nodes with the same bucket expression and variants get `-2`, `-3`, ...
    suffixes in document order, so every node of a flag has its own id.
    """
    found: list[dict[str, Any]] = []
    _fractional_nodes(targeting, found)
    seen: dict[str, int] = {}
    sites: dict[int, SplitSite] = {}
    for node in found:
        bucket_expr, buckets = _fractional_parts(node["fractional"])
        names = [b[0] if isinstance(b, list) and b else b for b in buckets]
        base = split_id(flag_key, bucket_expr, names)
        seen[base] = seen.get(base, 0) + 1
        ident = base if seen[base] == 1 else f"{base}-{seen[base]}"
        sites[id(node)] = SplitSite(ident, bucket_unit(bucket_expr))
    return sites


def _has_list_variant(buckets: Sequence[Any]) -> bool:
    return any(isinstance(b, list) and b and isinstance(b[0], list) for b in buckets)


def _generic_bucketer(fns: list[Fn], *, root: bool, flag_key: str) -> Bucketer:
    if root:

        def run_root(s: Any) -> Bucketed | None:
            values = [f(s) for f in fns]
            return evaluate(values, lambda: shorthand_key(flag_key, s.targeting_key))

        return run_root

    def run_item(d: Any) -> Bucketed | None:
        values = [f(d) for f in fns]
        return evaluate(
            values,
            lambda: shorthand_key(d.get("$flagd", {}).get("flagKey", ""), d.get("targetingKey")),
        )

    return run_item


def _shorthand_bucketer(buckets: list[Any], flag_key: str) -> Bucketer:
    table = parse_table(buckets)

    def run(s: Any) -> Bucketed | None:
        key = shorthand_key(flag_key, s.targeting_key)
        return bucket(key, table, shorthand=True) if key else None

    return run


def _keyed_bucketer(first: Fn, buckets: list[Any], flag_key: str) -> Bucketer:
    table = parse_table(buckets)

    def run(s: Any) -> Bucketed | None:
        key = first(s)
        if isinstance(key, str):
            return bucket(key, table, shorthand=False) if key else None
        values = [key, *fresh(buckets)]
        return evaluate(values, lambda: shorthand_key(flag_key, s.targeting_key))

    return run


def bucketer(
    fns: list[Fn], constants: list[tuple[bool, Any]], *, root: bool, flag_key: str
) -> Bucketer:
    """The bucketing closure of one `fractional` node.

    `constants` holds (is_constant, value) per argument. At the root, constant
    buckets are parsed once; otherwise every argument is evaluated on each call.
    """
    if not fns:
        return lambda _s: None
    rest = [value for _, value in constants[1:]]
    static = root and all(is_const for is_const, _ in constants[1:])
    if not static or _has_list_variant(rest):
        return _generic_bucketer(fns, root=root, flag_key=flag_key)
    first_const, first = constants[0]
    if not first_const:
        return _keyed_bucketer(fns[0], rest, flag_key)
    if isinstance(first, str) or _has_list_variant([first]):
        return _generic_bucketer(fns, root=root, flag_key=flag_key)
    return _shorthand_bucketer([first, *rest], flag_key)
