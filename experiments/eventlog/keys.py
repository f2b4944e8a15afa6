"""The Redis key layout of the session store and the event log.

Sessions are spread over `shards` shards (default 1); the shard of a session is
the unsigned 32-bit MurmurHash3 (seed 0) of its id modulo the shard count. Every
key carries the hash tag `{s<shard>}`, so a session's document and the stream
shard its events go to map to one Redis Cluster slot and one server-side script
can touch both::

    <prefix>:{s<shard>}:session:<session_id>   hash: doc, event, stream, tenant (TTL)
    <prefix>:{s<shard>}:assignments            stream of assignment events
    <prefix>:{s<shard>}:outcomes               stream of outcome events
    <prefix>:{s<shard>}:seen:<session_id>      set of the session's outcome event ids
                                               (expires with the session)

With the default prefix `vr` and one shard: `vr:{s0}:session:abc` and
`vr:{s0}:assignments`. The session hash holds the stored document (`doc`), the
id of the event recorded with it (`event`), that event's stream id (`stream`)
and the session's tenant (`tenant`). More shards spread the write load over
more cluster slots; readers merge the shards' streams by stream id.
"""

from __future__ import annotations

from dataclasses import dataclass

import mmh3

DEFAULT_PREFIX = "vr"


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Key names for one prefix and shard count; checks both on construction."""

    prefix: str = DEFAULT_PREFIX
    shards: int = 1

    def __post_init__(self) -> None:
        if not self.prefix or "{" in self.prefix or "}" in self.prefix:
            raise ValueError(
                f"key prefix {self.prefix!r} must be non-empty and contain no braces "
                "(braces would change the cluster hash tag)"
            )
        if isinstance(self.shards, bool) or not isinstance(self.shards, int) or self.shards < 1:
            raise ValueError(f"shard count must be a positive integer, got {self.shards!r}")

    def shard_of(self, session_id: str) -> int:
        """The shard of a session: murmur3 32-bit unsigned hash of its id mod `shards`."""
        if self.shards == 1:
            return 0
        return int(mmh3.hash(session_id, signed=False)) % self.shards

    def session_key(self, session_id: str) -> str:
        return f"{self.prefix}:{{s{self.shard_of(session_id)}}}:session:{session_id}"

    def assignment_stream(self, shard: int) -> str:
        return self._stream(shard, "assignments")

    def assignment_stream_of(self, session_id: str) -> str:
        """The stream shard a session's assignment event goes to."""
        return self.assignment_stream(self.shard_of(session_id))

    def assignment_streams(self) -> tuple[str, ...]:
        """Every assignment stream, in shard order."""
        return tuple(self.assignment_stream(shard) for shard in range(self.shards))

    def outcome_stream(self, shard: int) -> str:
        return self._stream(shard, "outcomes")

    def outcome_stream_of(self, session_id: str) -> str:
        """The stream shard a session's outcome events go to."""
        return self.outcome_stream(self.shard_of(session_id))

    def outcome_streams(self) -> tuple[str, ...]:
        """Every outcome stream, in shard order."""
        return tuple(self.outcome_stream(shard) for shard in range(self.shards))

    def seen_key(self, session_id: str) -> str:
        """The set of outcome event ids already recorded for a session (dedupe)."""
        return f"{self.prefix}:{{s{self.shard_of(session_id)}}}:seen:{session_id}"

    def _stream(self, shard: int, name: str) -> str:
        if isinstance(shard, bool) or not isinstance(shard, int) or not 0 <= shard < self.shards:
            raise ValueError(f"shard {shard!r} is outside 0..{self.shards - 1}")
        return f"{self.prefix}:{{s{shard}}}:{name}"
