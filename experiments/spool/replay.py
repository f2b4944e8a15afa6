"""`SpoolReplayer`: sends the spool to Redis, in order, once Redis answers;
`SpooledLogs`: the spooled logs, their spool and replayer, opened and closed together.

The replayer sleeps until the spool has records or Redis was seen away, pings
Redis with exponential backoff until it answers, then reads the spool in
batches from the acknowledged position. In a batch, the session creations are
re-issued first (concurrently: they share group commits), then the outcomes in
one ordered `append_outcomes` call, so each session's creation precedes its
outcomes and its outcomes keep their order. Then the batch is acknowledged.
The events keep their ids, so a batch sent again (after a failure in the
middle, or a crash before its `ack`) changes nothing: the session script finds
its own event (`created=True`), the outcome log reports `DUPLICATE`. When Redis
goes away in the middle of a batch, the retry skips the batch's records that
were already settled (replayed, found duplicate or set aside), so that within
a process each record is counted (`SpoolStats`) and set aside once.

A record that Redis refuses for good is not retried forever: a session that
another event created first (its spooled assignment was not recorded), an
outcome for a session that does not exist, a record that does not decode. It
is logged, counted (`SpoolStats.rejected`) and appended to `rejected.jsonl` in
the spool folder (fsynced; `payload` is base64 of the record, see `spooling_logs`),
so that nothing accepted disappears without a trace.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import ExperimentError, StorageUnavailableError
from ..eventlog.protocols import AppendResult, AppendStatus, OutcomeLog, SessionLog
from ..events import AssignmentEvent, EventDecodeError, OutcomeEvent
from ..telemetry import SPOOL_REPLAYED_RECORDS
from .disk_spool import DiskSpool, SpoolRecord
from .spooling_logs import (
    OUTCOME_RECORD,
    SESSION_RECORD,
    SpooledOutcomeLog,
    SpooledSessionLog,
    Spooler,
    decode_outcome,
    decode_session,
)

logger = logging.getLogger("voxroute.spool")

REJECTED_NAME = "rejected.jsonl"
DEFAULT_BATCH = 500
_RECORD_NAMES = {SESSION_RECORD: "session", OUTCOME_RECORD: "outcome"}


@dataclass(frozen=True, slots=True)
class _Session:
    record: SpoolRecord
    document: bytes
    event: AssignmentEvent


@dataclass(frozen=True, slots=True)
class _Outcome:
    record: SpoolRecord
    event: OutcomeEvent


class SpoolReplayer:
    """Replays `spooler`'s spool into `sessions` and `outcomes` (the Redis logs,
    not the spooled ones); `start` it once, `aclose` it at shutdown. With
    `outcomes` None, outcome records wait in the spool."""

    def __init__(
        self,
        spooler: Spooler,
        sessions: SessionLog,
        outcomes: OutcomeLog | None = None,
        *,
        batch: int = DEFAULT_BATCH,
        min_backoff_s: float = 0.05,
        max_backoff_s: float = 1.0,
    ) -> None:
        if isinstance(sessions, SpooledSessionLog) or isinstance(outcomes, SpooledOutcomeLog):
            raise TypeError("SpoolReplayer replays into the inner (Redis) logs, not spooled ones")
        self.spooler = spooler
        self.sessions = sessions
        self.outcomes = outcomes
        self.batch = batch
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.rejected_path = spooler.spool.directory / REJECTED_NAME
        self._task: asyncio.Task[None] | None = None
        # The settled records of the batch not yet acknowledged: sequence number ->
        # session id (None: undecodable), released once the batch is acknowledged.
        self._settled: dict[int, str | None] = {}

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="voxroute-spool-replay")

    async def aclose(self) -> None:
        """Stop; a batch in flight is not acknowledged and is sent again next time."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        spooler = self.spooler
        while True:
            await spooler.work.wait()
            try:
                await self._until_redis_answers()
                await self._drain()
            except StorageUnavailableError as exc:
                spooler.mark_down(exc)
                continue
            except Exception:  # a bug or a damaged spool: keep the records, try again later
                logger.exception("spool %s: replay failed", spooler.spool.directory)
                await asyncio.sleep(self.max_backoff_s)
                continue
            if spooler.redis_up and spooler.spool.depth.records == 0:
                spooler.work.clear()

    async def _until_redis_answers(self) -> None:
        delay = self.min_backoff_s
        while not await self.sessions.ping():
            await asyncio.sleep(delay)
            delay = min(2 * delay, self.max_backoff_s)
        if not self.spooler.redis_up:
            logger.warning("Redis answers again; replaying the spool")
        self.spooler.redis_up = True

    async def _drain(self) -> None:
        spool = self.spooler.spool
        while True:
            records = await spool.read(self.batch)
            if not records:
                if spool.depth.records == 0:
                    return
                await spool.wait_committed()
                continue
            unsettled = [record for record in records if record.seq not in self._settled]
            sessions, outcomes = await self._reject_undecodable(unsettled)
            await self._replay_sessions(sessions)
            await self._replay_outcomes(outcomes)
            await spool.ack(records[-1].end)
            for record in records:
                if (session_id := self._settled.pop(record.seq, None)) is not None:
                    self.spooler.release(session_id)

    async def _reject_undecodable(
        self, records: list[SpoolRecord]
    ) -> tuple[list[_Session], list[_Outcome]]:
        sessions: list[_Session] = []
        outcomes: list[_Outcome] = []
        for record in records:
            try:
                if record.kind == SESSION_RECORD:
                    sessions.append(_Session(record, *decode_session(record.payload)))
                elif record.kind == OUTCOME_RECORD:
                    outcomes.append(_Outcome(record, decode_outcome(record.payload)))
                else:
                    raise EventDecodeError(f"unknown record kind {record.kind}")
            except EventDecodeError as exc:
                await self._reject(record, None, f"undecodable: {exc}")
        return sessions, outcomes

    async def _replay_sessions(self, items: list[_Session]) -> None:
        results = await asyncio.gather(
            *(self.sessions.create_session(i.event.session_id, i.document, i.event) for i in items),
            return_exceptions=True,
        )
        _raise_retryable(results)
        replayed = 0
        for item, result in zip(items, results, strict=True):
            session_id = item.event.session_id
            if isinstance(result, BaseException):
                await self._reject(item.record, session_id, f"refused: {result}")
            elif not result.created:
                await self._reject(
                    item.record,
                    session_id,
                    f"session {session_id!r} was created by another event first; "
                    f"the spooled assignment event {item.event.event_id} was not recorded",
                )
            else:
                self._settled[item.record.seq] = session_id
                replayed += 1
        self.spooler.stats.replayed_sessions += replayed
        SPOOL_REPLAYED_RECORDS.labels("session", "appended").inc(replayed)

    async def _replay_outcomes(self, items: list[_Outcome]) -> None:
        if not items:
            return
        if self.outcomes is None:
            raise StorageUnavailableError("the spool holds outcomes but no outcome log is set")
        events = [item.event for item in items]
        try:
            results: Sequence[AppendResult | BaseException] = await self.outcomes.append_outcomes(
                events
            )
        except StorageUnavailableError:
            raise
        except ExperimentError:  # one bad event refused the batch: find it
            results = [await self._append_one(event) for event in events]
        appended = duplicates = 0
        for item, result in zip(items, results, strict=True):
            status = result.status if isinstance(result, AppendResult) else None
            session_id = item.event.session_id
            if status is AppendStatus.APPENDED:
                appended += 1
            elif status is AppendStatus.DUPLICATE:
                duplicates += 1
            else:
                reason = f"outcome {item.event.event_id}: {result}"
                await self._reject(item.record, session_id, reason)
                continue
            self._settled[item.record.seq] = session_id
        self.spooler.stats.replayed_outcomes += appended
        self.spooler.stats.duplicates += duplicates
        SPOOL_REPLAYED_RECORDS.labels("outcome", "appended").inc(appended)
        SPOOL_REPLAYED_RECORDS.labels("outcome", "duplicate").inc(duplicates)

    async def _append_one(self, event: OutcomeEvent) -> AppendResult | BaseException:
        assert self.outcomes is not None  # noqa: S101 - checked by the caller
        try:
            return (await self.outcomes.append_outcomes([event]))[0]
        except StorageUnavailableError:
            raise
        except ExperimentError as exc:
            return exc

    async def _reject(self, record: SpoolRecord, session_id: str | None, reason: str) -> None:
        logger.error("spool record %d set aside in %s: %s", record.seq, self.rejected_path, reason)
        line = orjson.dumps(
            {
                "seq": record.seq,
                "kind": record.kind,
                "reason": reason,
                "payload": base64.b64encode(record.payload).decode(),
            }
        )
        await asyncio.to_thread(_append_line, self.rejected_path, line)
        self._settled[record.seq] = session_id
        self.spooler.stats.rejected += 1
        SPOOL_REPLAYED_RECORDS.labels(_RECORD_NAMES.get(record.kind, "other"), "set_aside").inc()


@dataclass
class SpooledLogs:
    """The spooled session and outcome logs over one spool, with their replayer."""

    spooler: Spooler
    sessions: SpooledSessionLog
    outcomes: SpooledOutcomeLog
    replayer: SpoolReplayer

    @classmethod
    async def open(
        cls,
        spool: DiskSpool,
        sessions: SessionLog,
        outcomes: OutcomeLog,
        **replay_options: Any,
    ) -> SpooledLogs:
        """Index what an earlier run left in `spool`, wrap the logs, start the replayer."""
        spooler = Spooler(spool)
        try:
            await spooler.recover()
        except BaseException:
            await spool.aclose()  # release the folder's lock
            raise
        replayer = SpoolReplayer(spooler, sessions, outcomes, **replay_options)
        replayer.start()
        spooled = SpooledSessionLog(sessions, spooler), SpooledOutcomeLog(outcomes, spooler)
        return cls(spooler, *spooled, replayer)

    def report(self) -> dict[str, Any]:
        """The spool's state for a readiness probe."""
        spool = self.spooler.spool
        depth = spool.depth
        return {
            "depth": depth.records,
            "bytes": depth.bytes,
            "segments": depth.segments,
            "max_records": spool.max_records,
            "max_bytes": spool.max_bytes,
            "full": depth.records >= spool.max_records or depth.bytes >= spool.max_bytes,
            "redis_up": self.spooler.redis_up,
            "directory": str(spool.directory),
            **asdict(self.spooler.stats),
        }

    async def aclose(self) -> None:
        """Stop the replayer, close the Redis logs (writes failing now are
        spooled), then write what is queued and close the spool."""
        await self.replayer.aclose()
        await self.sessions.aclose()
        await self.outcomes.aclose()
        await self.spooler.spool.aclose()


def _raise_retryable(results: Sequence[object]) -> None:
    """Abort the batch on the first error that a later attempt can cure."""
    for result in results:
        if isinstance(result, StorageUnavailableError) or (
            isinstance(result, BaseException) and not isinstance(result, ExperimentError)
        ):
            raise result


def _append_line(path: Path, line: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
