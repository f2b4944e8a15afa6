"""The Redis key layout of the flag store.

Every key carries the hash tag `{flags}`, so the whole store lives in one Redis
Cluster slot and one server-side script can check versions and write the flags,
the audit entry and the versions atomically::

    <prefix>:{flags}:docs       hash: flag key -> the flag's flagd document (JSON)
    <prefix>:{flags}:versions   hash: flag key -> its version (integer from 1; kept
                                after a delete, so versions never repeat)
    <prefix>:{flags}:meta       hash: `version` (the flag-set version), `evaluators`
                                and `metadata` (the set's `$evaluators` / `metadata`, JSON)
    <prefix>:{flags}:audit      stream: one entry per changed flag (see `audit`)
    <prefix>:{flags}:changes    pub/sub channel: the new flag-set version after each write

With the default prefix: `vr:{flags}:docs`, `vr:{flags}:audit`, ...
"""

from __future__ import annotations

from dataclasses import dataclass

from ..eventlog.keys import DEFAULT_PREFIX, KeyLayout

HASH_TAG = "{flags}"


@dataclass(frozen=True, slots=True)
class FlagStoreKeys:
    """Key names of the flag store under one prefix (checked like the event log's)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        KeyLayout(prefix=self.prefix)  # the same rules: non-empty, no braces

    def _key(self, name: str) -> str:
        return f"{self.prefix}:{HASH_TAG}:{name}"

    @property
    def docs(self) -> str:
        return self._key("docs")

    @property
    def versions(self) -> str:
        return self._key("versions")

    @property
    def meta(self) -> str:
        return self._key("meta")

    @property
    def audit(self) -> str:
        return self._key("audit")

    @property
    def changes(self) -> str:
        """The pub/sub channel (not a key; named alike for readability)."""
        return self._key("changes")
