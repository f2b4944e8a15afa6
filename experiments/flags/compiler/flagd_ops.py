"""flagd's custom string and semantic-version operators, as flagd-core 1.0.0 evaluates them.

`starts_with` / `ends_with`: https://flagd.dev/reference/custom-operations/string-comparison-operation/
`sem_ver`: https://flagd.dev/reference/custom-operations/semver-operation/
Both return null (not false) for bad input, so that the flag falls back to its default variant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import semver

SEMVER_OPERATORS: frozenset[str] = frozenset({"=", "!=", "<", "<=", ">", ">=", "^", "~"})

VersionCompare = Callable[[semver.Version, semver.Version], bool]

_COMPARE: dict[str, VersionCompare] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "^": lambda a, b: a.major == b.major,
    "~": lambda a, b: a.major == b.major and a.minor == b.minor,
}


def starts_with(*args: Any) -> bool | None:
    """`starts_with`: null unless exactly two string arguments."""
    if len(args) != 2 or not isinstance(args[0], str) or not isinstance(args[1], str):
        return None
    return args[0].startswith(args[1])


def ends_with(*args: Any) -> bool | None:
    """`ends_with`: null unless exactly two string arguments."""
    if len(args) != 2 or not isinstance(args[0], str) or not isinstance(args[1], str):
        return None
    return args[0].endswith(args[1])


def normalize_version(arg: Any) -> semver.Version:
    """Parse a version like flagd: optional `v`/`V` prefix, `1` and `1.2` padded to three parts.

    Raises `ValueError` when it is not a semantic version.
    """
    version = str(arg)
    if version.startswith(("v", "V")):
        version = version[1:]
    numeric = version.split("-")[0].split("+")[0]
    dots = numeric.count(".")
    if dots < 2:
        version = numeric + ".0" * (2 - dots) + version[len(numeric) :]
    return semver.Version.parse(version)


def parse_version(arg: Any) -> semver.Version | None:
    try:
        return normalize_version(arg)
    except ValueError:
        return None


def version_compare(operator: Any) -> VersionCompare | None:
    """The comparison for a `sem_ver` operator, None when flagd does not know it."""
    if not isinstance(operator, str):
        return None
    return _COMPARE.get(operator)


def sem_ver(*args: Any) -> bool | None:
    """`sem_ver [version, operator, version]`: null for a wrong arity, a bad version or operator."""
    if len(args) != 3:
        return None
    left, operator, right = args
    v1 = parse_version(left)
    v2 = parse_version(right)
    if v1 is None or v2 is None:
        return None
    compare = version_compare(operator)
    return None if compare is None else compare(v1, v2)
