"""The fault test's load against a three-node Redis Cluster: every session and
outcome recorded exactly once, and the writes spread over all three primaries."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from faults import Accepted, Load, VoxrouteProcess
from redis_cluster import local_cluster

from experiments.eventlog import KeyLayout
from experiments.events import AssignmentEvent, OutcomeEvent

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not (shutil.which("redis-server") and shutil.which("redis-cli")),
        reason="needs redis-server and redis-cli on the PATH",
    ),
]
SESSIONS = 1200
SHARDS = 12
KEYS = KeyLayout(prefix="load", shards=SHARDS)


@pytest.fixture
def cluster_and_server(tmp_path: Path) -> Iterator[tuple[int, VoxrouteProcess]]:
    with local_cluster(tmp_path / "cluster") as ports:
        env = {
            "VOXROUTE_REDIS_URL": f"redis+cluster://127.0.0.1:{ports[0]}",
            "VOXROUTE_KEY_PREFIX": KEYS.prefix,
            "VOXROUTE_SHARDS": str(SHARDS),
            "VOXROUTE_DATA_DIR": str(tmp_path / "voxroute"),
            "VOXROUTE_LOG_LEVEL": "ERROR",
        }
        server = VoxrouteProcess(env).start(tmp_path / "voxroute.log")
        try:
            yield ports[0], server
        finally:
            server.stop()


async def _drive(base_url: str, accepted: Accepted) -> None:
    await asyncio.gather(*Load(base_url, SESSIONS, 8, 2, accepted).start())


def test_the_load_lands_exactly_once_on_every_primary(
    cluster_and_server: tuple[int, VoxrouteProcess],
) -> None:
    port, server = cluster_and_server
    accepted = Accepted()
    asyncio.run(_drive(server.url, accepted))
    assert accepted.outcome_statuses.keys() == {"appended"}

    sessions: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    primaries_written: set[str] = set()
    with redis.RedisCluster(host="127.0.0.1", port=port) as cluster:
        for shard in range(SHARDS):
            for stream, decode, tally in (
                (KEYS.assignment_stream(shard), AssignmentEvent.decode, sessions),
                (KEYS.outcome_stream(shard), OutcomeEvent.decode, outcomes),
            ):
                entries = cluster.xrange(stream)
                if entries:
                    primaries_written.add(cluster.get_node_from_key(stream).name)
                for _, fields in entries:
                    event = decode(fields)
                    tally[event.session_id if tally is sessions else event.event_id] += 1
        assert len(cluster.get_primaries()) == 3
    assert set(sessions) == accepted.sessions
    assert set(sessions.values()) == {1}
    assert set(outcomes) == accepted.outcomes
    assert set(outcomes.values()) == {1}
    assert len(primaries_written) == 3
