"""fast_init: the same objects as the dataclass's own __init__, still frozen."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import pytest

from experiments.performance import fast_init


@dataclasses.dataclass(frozen=True, slots=True)
class Plain:
    a: int
    b: str
    c: tuple[int, ...] = ()
    d: list[int] = dataclasses.field(default_factory=list)


@fast_init
@dataclasses.dataclass(frozen=True, slots=True)
class Fast:
    a: int
    b: str
    c: tuple[int, ...] = ()
    d: list[int] = dataclasses.field(default_factory=list)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1, "x"), {}), ((1, "x", (2,)), {}), ((1,), {"b": "y", "d": [3]}), ((), {"a": 0, "b": ""})],
)
def test_the_same_fields_as_the_dataclass_init(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    plain, fast = Plain(*args, **kwargs), Fast(*args, **kwargs)
    assert dataclasses.astuple(fast) == dataclasses.astuple(plain)
    assert repr(fast).removeprefix("Fast") == repr(plain).removeprefix("Plain")


def test_a_default_factory_makes_a_new_value_each_time() -> None:
    first, second = Fast(1, "x"), Fast(1, "x")
    assert first.d == []
    assert first.d is not second.d


def test_instances_stay_frozen_hashable_and_picklable() -> None:
    fast = Fast(1, "x", (2,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.a = 2
    assert fast == Fast(1, "x", (2,))
    assert pickle.loads(pickle.dumps(fast)) == fast  # noqa: S301 (our own bytes)


def test_wrong_arguments_fail_as_they_did() -> None:
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'b'"):
        Fast(1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'e'"):
        Fast(1, "x", e=2)
    assert str(inspect.signature(Fast)) == str(inspect.signature(Plain))
    assert str(inspect.signature(Fast)).endswith("= <factory>) -> None")


def test_only_frozen_slots_dataclasses_without_post_init_are_taken() -> None:
    @dataclasses.dataclass(slots=True)
    class Mutable:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            pass

    for cls in (Mutable, Checked, int):
        with pytest.raises(TypeError):
            fast_init(cls)
