"""Duplicate keys in a JSON body: a 422 naming the key and where it is.

JSON parsers keep the last of repeated keys (pydantic-core, orjson and the
standard library alike), so `{"region": "eu", "region": "us"}` would be taken
as `us` without a word. `find_duplicate_key` is the exact check: the standard
library's parser with a hook on every object, then a walk to the first object
with a repeated key. It costs about twice pydantic-core's validation of the
same bytes, so the hot paths call it only when a cheap count says a key may
repeat (see `service.api.body.parse_body`); the other routes call it on every
body (`service.api.body.JsonBodyRoute`).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.exceptions import RequestValidationError

Location = tuple[str | int, ...]


def find_duplicate_key(body: bytes) -> tuple[Location, str] | None:
    """The location of the first object (in document order) that repeats a key,
    and that key; None when no key repeats, or when `body` is not JSON (the
    caller's parser reports that)."""
    # id of an object that repeats a key -> the key, and the pairs: they keep the
    # values that the repeat dropped alive, so that no later object reuses their ids
    repeated: dict[int, tuple[str, list[tuple[str, Any]]]] = {}

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        document = dict(pairs)
        if len(document) != len(pairs):
            repeated[id(document)] = (_first_repeated(pairs), pairs)
        return document

    try:
        document = json.loads(body, object_pairs_hook=unique)
    except (ValueError, RecursionError):
        return None
    return _locate(document, repeated) if repeated else None


def reject_duplicate_keys(body: bytes) -> None:
    """Raise a 422 (`RequestValidationError`, under `body`) if a key repeats in an object."""
    found = find_duplicate_key(body)
    if found is None:
        return
    location, key = found
    error = {
        "type": "duplicate_key",
        "loc": ("body", *location, key),
        "msg": f"key {key!r} appears more than once in this object; send each key once",
        "input": key,
    }
    raise RequestValidationError([error], body=body)


def _first_repeated(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    raise AssertionError("no repeated key")  # pragma: no cover - called only when one repeats


def _locate(
    document: Any, repeated: dict[int, tuple[str, list[tuple[str, Any]]]]
) -> tuple[Location, str]:
    """Depth first, in document order, without recursion (the nesting is the client's)."""
    stack: list[tuple[Location, Any]] = [((), document)]
    while stack:
        location, value = stack.pop()
        if isinstance(value, dict):
            if id(value) in repeated:
                return location, repeated[id(value)][0]
            stack.extend(((*location, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*location, i), item) for i, item in reversed(list(enumerate(value))))
    raise AssertionError("a repeating object is not in the document")  # pragma: no cover
