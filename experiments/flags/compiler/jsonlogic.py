"""JsonLogic value semantics, exactly as panzi-json-logic 1.0.1 (the engine of flagd-core 1.0.0).

Truthiness, loose equality, number and string coercion, ordering, `var` paths,
`substr`, `missing`, `in`, `merge`. The compiled evaluator calls these helpers so that
every result (including Python quirks such as `cat` writing `True` for `true`)
matches the interpreter flagd-core uses.
Spec: https://jsonlogic.com/operations.html
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from math import isnan
from time import mktime
from typing import Any
from wsgiref.handlers import format_date_time

NAN = float("nan")
NUMERIC = (int, float)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INFINITIES = ("inf", "-inf", "+inf")


def to_number(a: Any) -> Any:
    """JsonLogic `Number(a)`; NaN where JavaScript gives NaN (panzi `to_number`)."""
    if isinstance(a, NUMERIC):
        return a
    if a is None:
        return 0
    if isinstance(a, list):
        if not a:
            return 0
        return NAN if len(a) > 1 else to_number(a[0])
    if isinstance(a, dict):
        return NAN
    if isinstance(a, str) and a.strip().lower() in _INFINITIES:
        return NAN
    if isinstance(a, datetime):
        return (a - _EPOCH).total_seconds() * 1000.0
    if isinstance(a, date):
        return (datetime.combine(a, time()) - _EPOCH).total_seconds() * 1000.0
    try:
        return float(a)
    except ValueError:
        return NAN


def to_string(value: Any) -> str:
    """JsonLogic `String(value)` as panzi spells it (note: `True` for a boolean)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return "%.15g" % value  # noqa: UP031 - the exact format panzi uses
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, list):
        return ",".join(to_string(item) for item in value)
    if isinstance(value, dict):
        return "[object Object]"
    if isinstance(value, date | datetime):
        return format_date_time(mktime(value.timetuple()))
    return str(value)


def to_bool(value: Any) -> bool:
    """JsonLogic truthiness: `0`, `""`, `[]`, `null`, `NaN` and `false` are false."""
    if value is None:
        return False
    if type(value) is bool:
        return value
    if isinstance(value, float):
        return not isnan(value) and bool(value)
    if isinstance(value, str | int | list):
        return bool(value)
    return True


def not_(value: Any) -> bool:
    return not to_bool(value)


def loose_equals(a: Any = None, b: Any = None, *_ignored: Any) -> bool:
    """JsonLogic `==` (JavaScript loose equality as panzi implements it)."""
    atype = type(a)
    if atype is type(b):
        return a is b if atype in (list, dict) else bool(a == b)
    if isinstance(a, NUMERIC):
        return bool(a == (b if isinstance(b, NUMERIC) else to_number(b)))
    if isinstance(b, NUMERIC):
        return bool(to_number(a) == b)
    if a is None or b is None:
        return False
    if isinstance(a, str) and isinstance(b, list | dict):
        return a == to_string(b)
    if isinstance(a, list | dict):
        if isinstance(b, list | dict):
            return False
        if isinstance(b, str):
            return to_string(a) == b
    raise TypeError


def less_than(a: Any, b: Any) -> bool:
    if isinstance(a, NUMERIC):
        return bool(a < to_number(b))
    if isinstance(b, NUMERIC):
        return bool(to_number(a) < b)
    if isinstance(a, str):
        return a < to_string(b)
    if isinstance(b, str):
        return to_string(a) < b
    return bool(to_number(a) < to_number(b))


def less_equal(a: Any, b: Any) -> bool:
    if isinstance(a, NUMERIC):
        return bool(a <= to_number(b))
    if isinstance(b, NUMERIC):
        return bool(to_number(a) <= b)
    if isinstance(a, str):
        return a <= to_string(b)
    if isinstance(b, str):
        return to_string(a) <= b
    return bool(to_number(a) <= to_number(b))


def greater_than(a: Any, b: Any) -> bool:
    if isinstance(a, NUMERIC):
        return bool(a > to_number(b))
    if isinstance(b, NUMERIC):
        return bool(to_number(a) > b)
    if isinstance(a, str):
        return a > to_string(b)
    if isinstance(b, str):
        return to_string(a) > b
    return bool(to_number(a) > to_number(b))


def greater_equal(a: Any, b: Any) -> bool:
    if isinstance(a, NUMERIC):
        return bool(a >= to_number(b))
    if isinstance(b, NUMERIC):
        return bool(to_number(a) >= b)
    if isinstance(a, str):
        return a >= to_string(b)
    if isinstance(b, str):
        return to_string(a) >= b
    return bool(to_number(a) >= to_number(b))


def _slice_start(index: Any, strlen: int) -> int:
    if isnan(index):
        return 0
    if index < 0:
        index = -index
        return 0 if index >= strlen else strlen - int(index)
    return min(int(index), strlen)


def substr(string: Any = None, index: Any = None, length: Any = None, *_ignored: Any) -> str:
    """JsonLogic `substr` over code points (panzi `op_substr`)."""
    text = to_string(string)
    strlen = len(text)
    start = _slice_start(to_number(index), strlen)
    if length is None:
        return text[start:]
    count = to_number(length)
    if isnan(count):
        return ""
    count = int(count)
    end = max(strlen + count, start) if count < 0 else start + count
    return text[start:end]


def walk(data: Any, props: Sequence[str], default: Any = None) -> Any:
    """Follow a dotted `var` path (already split) the way panzi `op_var` does."""
    for prop in props:
        if isinstance(data, list | str):
            if prop == "length":
                return len(data)  # JavaScript's `.length`
            try:
                index = int(prop, 10)
            except ValueError:
                return default
            if prop != str(index) or index < 0 or index >= len(data):
                return default
            data = data[index]
        elif isinstance(data, dict):
            data = data.get(prop)
        else:
            return default
    return default if data is None else data


def var(data: Any = None, key: Any = None, default: Any = None) -> Any:
    """JsonLogic `var` for any key (panzi `op_var`, including its numeric-key branch)."""
    if key is None or key == "":
        return data
    if isinstance(key, NUMERIC):
        if isinstance(data, list | str):
            try:
                index = int(key)
            except ValueError:
                return default
            if index != key or index < 0 or index >= len(data):
                return default
            return data[index]
        if not isinstance(data, dict):
            return default
        data = data.get(key)
        if data is None:
            return default
    return walk(data, to_string(key).split("."), default)


def missing(data: Any, *args: Any) -> list[Any]:
    """JsonLogic `missing`: the keys whose `var` is null or the empty string."""
    keys: Sequence[Any] = args[0] if args and isinstance(args[0], list) else args
    found: list[Any] = []
    for key in keys:
        value = var(data, key)
        if value is None or value == "":
            found.append(key)
    return found


def missing_some(data: Any, need_count: Any = 0, keys: Any = None, *_ignored: Any) -> list[Any]:
    """JsonLogic `missing_some`: `[]` when at least `need_count` keys are present."""
    if not isinstance(keys, list):
        return []
    need = to_number(need_count)
    absent = missing(data, keys)
    return [] if len(keys) - len(absent) >= need else absent


def contains(needle: Any = None, haystack: Any = None, *_ignored: Any) -> bool:
    """JsonLogic `in`: list membership or substring."""
    if isinstance(haystack, list):
        return needle in haystack
    if isinstance(haystack, str):
        return to_string(needle) in haystack
    return False


def merge(*args: Any) -> list[Any]:
    items: list[Any] = []
    for arg in args:
        if isinstance(arg, list):
            items.extend(arg)
        else:
            items.append(arg)
    return items


def _json_default(arg: Any) -> Any:
    if isinstance(arg, date | datetime):
        return arg.isoformat()
    raise TypeError(f"unhandled type: {type(arg).__module__}.{type(arg).__name__}")


def log(arg: Any = None, *_ignored: Any) -> Any:
    """JsonLogic `log`: print the value as JSON on stdout and return it."""
    json.dump(arg, sys.stdout, default=_json_default)
    sys.stdout.write("\n")
    return arg


def fresh(value: Any) -> Any:
    """A new copy of the lists in a literal, as the interpreter builds them on every run."""
    if isinstance(value, list):
        return [fresh(item) for item in value]
    return value
