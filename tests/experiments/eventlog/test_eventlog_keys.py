"""The Redis key layout: prefixes, shards and cluster hash tags."""

from __future__ import annotations

import mmh3
import pytest
from redis.crc import key_slot

from experiments.eventlog.keys import KeyLayout


def test_default_layout_has_one_shard_under_vr() -> None:
    keys = KeyLayout()
    assert keys.session_key("abc") == "vr:{s0}:session:abc"
    assert keys.assignment_stream_of("abc") == "vr:{s0}:assignments"
    assert keys.assignment_streams() == ("vr:{s0}:assignments",)


def test_shard_is_the_unsigned_murmur3_of_the_session_id_modulo_shards() -> None:
    # mmh3.hash("abc", seed=0, signed=False) == 3017643002, and 3017643002 % 4 == 2
    assert mmh3.hash("abc", signed=False) == 3_017_643_002
    keys = KeyLayout(prefix="p", shards=4)
    assert keys.shard_of("abc") == 2
    assert keys.session_key("abc") == "p:{s2}:session:abc"
    assert keys.assignment_stream_of("abc") == "p:{s2}:assignments"


@pytest.mark.parametrize("session_id", ["abc", "s-1", "ünïcode", "x" * 128])
def test_a_session_and_its_stream_share_a_cluster_slot(session_id: str) -> None:
    keys = KeyLayout(shards=16)
    assert key_slot(keys.session_key(session_id).encode()) == key_slot(
        keys.assignment_stream_of(session_id).encode()
    )


def test_sessions_spread_over_every_shard() -> None:
    keys = KeyLayout(shards=4)
    assert {keys.shard_of(f"session-{i}") for i in range(200)} == {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("prefix", "shards"), [("", 1), ("a{b", 1), ("a}b", 1), ("vr", 0), ("vr", True)]
)
def test_bad_layouts_are_refused(prefix: str, shards: int) -> None:
    with pytest.raises(ValueError, match=r"prefix|shard"):
        KeyLayout(prefix=prefix, shards=shards)


def test_a_shard_outside_the_layout_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        KeyLayout(shards=2).assignment_stream(2)
