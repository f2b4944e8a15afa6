"""Speed tricks with one definition each, for the paths that make many objects.

- `fast_init`: a quicker `__init__` for the frozen slots dataclasses made per event
  (sessions and outcomes), setting each slot through its descriptor instead of
  `object.__setattr__`; instances stay frozen and compare, hash and pickle as
  the dataclass's own (bench/bench_outcomes.py).
- `gc_paused`: the cyclic GC paused while bulk reads decode pages
  (bench/bench_reader.py, bench/bench_analysis.py).
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


class _Factory:
    """The default of a field with a default factory, shown as dataclasses shows it."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def fast_init(cls: type[T]) -> type[T]:
    """Give the frozen slots dataclass `cls` the quicker `__init__` (a class decorator,
    placed above `@dataclass(frozen=True, slots=True)`)."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen slots dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__, which fast_init would skip")
    namespace: dict[str, Any] = {"_MISSING": _FACTORY}
    arguments: list[str] = []
    body: list[str] = []
    for i, field in enumerate(dataclasses.fields(cls)):  # type: ignore[arg-type]
        if not field.init or field.kw_only:
            raise TypeError(f"{cls.__name__}.{field.name}: fast_init takes init, positional fields")
        name = field.name
        namespace[f"_set{i}"] = cls.__dict__[name].__set__
        value = name
        if field.default is not dataclasses.MISSING:
            namespace[f"_default{i}"] = field.default
            arguments.append(f"{name}=_default{i}")
        elif field.default_factory is not dataclasses.MISSING:
            namespace[f"_factory{i}"] = field.default_factory
            arguments.append(f"{name}=_MISSING")
            value = f"_factory{i}() if {name} is _MISSING else {name}"
        else:
            arguments.append(name)
        body.append(f"    _set{i}(self, {value})\n")
    lines = "".join(body) or "    pass\n"
    source = f"def __init__(self, {', '.join(arguments)}):\n{lines}"
    exec(source, namespace)  # noqa: S102 (source made of field names only, as dataclasses does)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC (of the whole process) for the block, and restore it
    as it was. For bulk reading: decoding pages allocates many small containers
    without cycles, and the collections they trigger slow decoding a lot
    (bench/bench_reader.py); a loader that keeps what it reads pauses it for the
    whole read (`analysis.load`)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
