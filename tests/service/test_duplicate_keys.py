"""The exact duplicate-key check, and the key counts that let the hot paths skip it."""

from __future__ import annotations

import orjson
import pytest

from service.api.body import KeyCountedBody
from service.api.duplicate_keys import Location, find_duplicate_key
from service.api.outcome_schemas import BatchIn
from service.api.schemas import SessionIn

DEEP = 400


@pytest.mark.parametrize(
    ("body", "found"),
    [
        (b'{"a": 1, "a": 2}', ((), "a")),
        (b'{"a": 1, "b": 2, "a": 1}', ((), "a")),
        (b'{"a": {"b": 1, "b": 2}}', (("a",), "b")),
        (b'[{"a": 1}, {"b": 1, "c": {"d": 1, "d": 1}}]', ((1, "c"), "d")),
        (b'{"a": {"x": 1, "x": 2}, "a": 5}', ((), "a")),  # the outer object comes first
        (b'{"a": [{"x": 1, "x": 2}], "b": {"y": 1, "y": 1}}', (("a", 0), "x")),
        (b'{"\\u0061": 1, "a": 2}', ((), "a")),  # keys compare decoded
        (b'{"a": 1, "A": 2}', None),
        (b'{"a": "x:y", "b": ":", "c": {"a": 1}}', None),
        (b'{"a": 1', None),  # not JSON: the caller's parser says so
        (b"", None),
        (b"[" * 100_000, None),
        (b'{"a": ' * DEEP + b'{"k": 1, "k": 2}' + b"}" * DEEP, (("a",) * DEEP, "k")),
    ],
)
def test_the_first_object_that_repeats_a_key_is_found(
    body: bytes, found: tuple[Location, str] | None
) -> None:
    assert find_duplicate_key(body) == found


SESSION = {
    "session_id": "call-1",
    "tenant_id": "acme",
    "region": "eu",
    "features": {"s2s": True, "barge_in": False},
    "attributes": {"plan": "pro", "seats": 3, "ratio": 0.5, "beta": True},
}
EVENT = {"session_id": "call-1", "event_id": "e1", "turn": 2, "metrics": {"mos": 4, "wer": 0.1}}
BATCH = {"events": [EVENT, {**EVENT, "event_id": "e2"}], "mode": "per_event", "tenant_id": "a"}


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (SessionIn, SESSION),
        (SessionIn, {"session_id": "call-1", "tenant_id": "acme", "region": "eu"}),
        (SessionIn, {**SESSION, "features": {}, "attributes": {}}),
        (BatchIn, BATCH),
        (BatchIn, {"events": [{"session_id": "call-1", "metrics": {"mos": 4}}]}),
        *[(model, example) for model in (SessionIn, BatchIn)
          for example in model.model_json_schema()["examples"]],
    ],
)  # fmt: skip
def test_the_models_count_every_key_of_an_ordinary_body(
    model: type[KeyCountedBody], body: dict[str, object]
) -> None:
    """Equal counts let `parse_body` skip the exact check (the hot paths' speed)."""
    content = orjson.dumps(body)
    assert model.model_validate_json(content).json_key_count() == content.count(b":")


@pytest.mark.parametrize(
    "content",
    [
        b'{"events": [{"session_id": "s", "metrics": {"mos": {"a": 1, "b": 2}}}]}',
        b'{"events": [{"session_id": {"id": "s"}, "metrics": {"mos": 4}}]}',
    ],
)
def test_a_batch_never_counts_more_keys_than_its_json_has(content: bytes) -> None:
    """Values typed Any are not descended into: counted short, never over."""
    assert BatchIn.model_validate_json(content).json_key_count() < content.count(b":")
