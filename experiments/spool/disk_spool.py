"""`DiskSpool`: a bounded, append-only, crash-safe queue of records on local disk.

It holds the writes that Redis could not take (see `spooling_logs`) until they are
replayed. A record is `(kind, payload)`: a kind byte and opaque bytes.

On disk, in one folder::

    00000000000000000000.seg   segment: the magic b"VRSPOOL1", then frames
    00000000000000001742.seg   named by the sequence number of its first record
    ack                        8-byte big-endian sequence number of the first
                               record not yet replayed, then its CRC32 (4 bytes)

A frame is `length (u32 BE) | crc32 (u32 BE) | kind (1 byte) | payload`, where
`length` counts kind and payload and the CRC32 covers the 4 length bytes, the
kind and the payload. Records are numbered from 0 in append order; a segment's
records follow on from the previous segment's.

Durability (group fsync): `append` queues the frames; one writer task writes
every frame queued since its last write in one `write` and one `fsync`
(fsyncs are at least `fsync_interval_s` apart, so that a burst shares one),
then answers the callers. A record is on disk before its caller is answered.
Creating a segment also fsyncs the folder. A crash can only tear the frames of
the last segment's unfinished write: on open, the last segment is cut back to
its last whole frame with a valid CRC. A bad frame anywhere else is damage that
a crash does not cause: opening refuses with `SpoolCorruptError`.

Bounds: `max_records` records not yet acknowledged (queued ones included) and
`max_bytes` of segment files (acknowledged records stay on disk until their
whole segment is, so keep `segment_bytes` well under `max_bytes`). An append
that does not fit raises `SpoolFullError` and writes nothing.

Replay: `read` returns committed records from the acknowledged position
(or from a given cursor); `ack(cursor)` records, atomically (write, fsync,
rename), that every record before `cursor` is replayed, then deletes the
segments that hold only replayed records. After a crash the replay resumes at
the last `ack`, so a record can be replayed twice; consumers must be
idempotent. One task at a time should read and acknowledge.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ErrorCode, ExperimentError, StorageUnavailableError
from ..telemetry import SPOOL_DEPTH
from .segment_files import (
    HEADER_BYTES,
    SpoolCorruptError,
    SpoolLockedError,
    append_all,
    create_segment,
    encode_frame,
    lock_folder,
    open_folder,
    read_frames,
    write_ack,
)

logger = logging.getLogger("voxroute.spool")

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_RECORDS = 1_000_000
DEFAULT_FSYNC_INTERVAL_S = 0.002

__all__ = [
    "DiskSpool",
    "SpoolCorruptError",
    "SpoolCursor",
    "SpoolDepth",
    "SpoolFullError",
    "SpoolLockedError",
    "SpoolRecord",
]


class SpoolFullError(ExperimentError):
    """The spool has no room for the records: nothing was written; retry later."""

    code = ErrorCode.SPOOL_FULL


@dataclass(frozen=True, slots=True)
class SpoolCursor:
    """A position: the record `seq` starts at byte `offset` of segment `segment`
    (the segment's first sequence number)."""

    seq: int
    segment: int
    offset: int


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One committed record; `end` is the cursor just after it (what to `ack`)."""

    seq: int
    kind: int
    payload: bytes
    end: SpoolCursor


@dataclass(frozen=True, slots=True)
class SpoolDepth:
    """Records not yet acknowledged (queued ones included) and bytes on disk."""

    records: int
    bytes: int
    segments: int


@dataclass(slots=True)
class _Segment:
    base: int
    path: Path
    count: int  # committed records
    size: int  # committed bytes, header included


@dataclass(slots=True)
class _Pending:
    frames: list[bytes]
    size: int
    future: asyncio.Future[int] = field(repr=False)


class DiskSpool:
    """The spool in `directory` (created if missing); see the module docstring.

    Build it with `DiskSpool.open(...)`, which scans the folder (cutting a torn
    tail); `aclose` writes what is queued and closes the files.
    """

    def __init__(
        self,
        directory: Path,
        segments: list[_Segment],
        acked: SpoolCursor,
        *,
        max_bytes: int,
        max_records: int,
        segment_bytes: int,
        fsync_interval_s: float,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_records = max_records
        self.segment_bytes = segment_bytes
        self.fsync_interval_s = fsync_interval_s
        self.fsyncs = 0
        self._segments = segments
        self._acked = acked
        self._next_seq = segments[-1].base + segments[-1].count if segments else acked.seq
        self._disk_bytes = sum(segment.size for segment in segments)
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._queue: list[_Pending] = []
        self._queued_records = 0
        self._queued_bytes = 0
        self._writer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one file operation at a time: a write group or an ack
        self._committed = asyncio.Event()
        self._last_sync = 0.0
        self._broken: OSError | None = None
        self._closed = False
        self._reported_depth = 0  # this spool's share of the `voxroute_spool_depth` gauge
        self._report_depth()

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_records: int = DEFAULT_MAX_RECORDS,
        segment_bytes: int | None = None,
        fsync_interval_s: float = DEFAULT_FSYNC_INTERVAL_S,
    ) -> DiskSpool:
        """Open (or create) the spool in `directory`. `segment_bytes` defaults to
        a 16th of `max_bytes`, between 64 KiB and 16 MiB."""
        _check_bounds(max_bytes, max_records, fsync_interval_s)
        if segment_bytes is None:
            segment_bytes = max(64 * 1024, min(16 * 1024 * 1024, max_bytes // 16))
        path = Path(directory)
        lock = lock_folder(path)
        try:
            scanned, ack_seq, ack_offset = open_folder(path)
        except BaseException:
            os.close(lock)
            raise
        segments = [_Segment(s.base, s.path, s.count, s.size) for s in scanned]
        spool = cls(
            path,
            segments,
            SpoolCursor(ack_seq, _segment_of(segments, ack_seq), ack_offset),
            max_bytes=max_bytes,
            max_records=max_records,
            segment_bytes=segment_bytes,
            fsync_interval_s=fsync_interval_s,
        )
        spool._lock_fd = lock
        if segments:
            spool._fd = os.open(segments[-1].path, os.O_WRONLY | os.O_APPEND)
        return spool

    @classmethod
    def open_slot(
        cls, parent: str | os.PathLike[str], *, slots: int = 64, **options: Any
    ) -> DiskSpool:
        """Open the first of `parent/w0`, `parent/w1`, ... that no other process
        holds: one spool per worker process, each found again after a restart."""
        for slot in range(slots):
            try:
                return cls.open(Path(parent) / f"w{slot}", **options)
            except SpoolLockedError:
                continue
        raise SpoolLockedError(
            f"spool {parent}: all {slots} worker slots are in use", context={"spool": str(parent)}
        )

    @property
    def depth(self) -> SpoolDepth:
        return SpoolDepth(
            self._next_seq - self._acked.seq + self._queued_records,
            self._disk_bytes + self._queued_bytes,
            len(self._segments),
        )

    @property
    def acked(self) -> SpoolCursor:
        """Where replay resumes: the first record not yet acknowledged."""
        return self._acked

    def submit(self, records: Sequence[tuple[int, bytes]]) -> asyncio.Future[int]:
        """Queue `records` (all or none) and return a future that resolves to
        the first one's sequence number once all are fsynced. Raises
        `SpoolFullError` (nothing queued) when they do not fit, and
        `StorageUnavailableError` when the spool is closed or its disk failed."""
        self._check_writable()
        frames = [encode_frame(kind, payload) for kind, payload in records]
        size = sum(map(len, frames))
        self._check_room(len(frames), size)
        pending = _Pending(frames, size, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        self._queued_records += len(frames)
        self._queued_bytes += size
        self._report_depth()
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="voxroute-spool-fsync")
        return pending.future

    async def append(self, records: Sequence[tuple[int, bytes]]) -> int:
        """`submit`, then wait until the records are on disk; the first's sequence
        number. Cancelling the caller does not withdraw the records."""
        return await asyncio.shield(self.submit(records))

    async def read(self, limit: int, after: SpoolCursor | None = None) -> list[SpoolRecord]:
        """At most `limit` committed records from `after` (default: the
        acknowledged position), oldest first."""
        start = self._acked if after is None else after
        plan = [
            (segment.path, segment.base, *_start_in(segment, start), segment.size)
            for segment in self._segments
            if segment.base + segment.count > start.seq
        ]
        if not plan or limit < 1:
            return []
        rows = await asyncio.to_thread(read_frames, plan, limit)
        return [SpoolRecord(seq, kind, data, SpoolCursor(*end)) for seq, kind, data, end in rows]

    async def wait_committed(self) -> None:
        """Return after the next group of queued records is on disk (at once if none is queued)."""
        if self._queued_records:
            await self._committed.wait()

    async def ack(self, cursor: SpoolCursor) -> None:
        """Record that every record before `cursor` is replayed; delete the
        segments that hold only such records."""
        if not self._acked.seq <= cursor.seq <= self._next_seq:
            raise ValueError(
                f"spool {self.directory}: cannot acknowledge up to record {cursor.seq}, "
                f"outside {self._acked.seq}..{self._next_seq}"
            )
        async with self._lock:
            done = [s for s in self._segments if s.base + s.count <= cursor.seq]
            if cursor.seq < self._next_seq:  # the last segment takes more records
                done = [s for s in done if s is not self._segments[-1]]
            await asyncio.to_thread(self._ack_sync, cursor.seq, done)
            self._acked = cursor
            del self._segments[: len(done)]
            self._disk_bytes -= sum(s.size for s in done)
        self._report_depth()

    async def aclose(self) -> None:
        """Write what is queued, then close the files; later appends fail."""
        self._closed = True
        if self._writer is not None:
            await asyncio.wait([self._writer])
        async with self._lock:
            self._close_fd()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
        SPOOL_DEPTH.dec(self._reported_depth)  # the records wait for the next process
        self._reported_depth = 0

    def _report_depth(self) -> None:
        """Move the gauge by the change of this spool's depth since the last report:
        the gauge sums the spools of the process (tests open several)."""
        if self._closed:
            return
        records = self.depth.records
        if records != self._reported_depth:
            SPOOL_DEPTH.inc(records - self._reported_depth)
            self._reported_depth = records

    def _ack_sync(self, seq: int, done: list[_Segment]) -> None:
        write_ack(self.directory, seq)
        if done and done[-1] is self._segments[-1]:
            self._close_fd()
        for segment in done:
            segment.path.unlink(missing_ok=True)

    def _check_writable(self) -> None:
        if self._closed or self._broken is not None:
            why = "it is closed" if self._closed else f"its disk failed: {self._broken}"
            raise StorageUnavailableError(
                f"spool {self.directory}: cannot take records, {why}",
                context={"spool": str(self.directory)},
            )

    def _check_room(self, records: int, size: int) -> None:
        depth = self.depth
        if depth.records + records <= self.max_records and depth.bytes + size <= self.max_bytes:
            return
        raise SpoolFullError(
            f"spool {self.directory} is full: {records} records ({size} bytes) do not fit "
            f"beside {depth.records} records ({depth.bytes} bytes) of at most "
            f"{self.max_records} records and {self.max_bytes} bytes; retry when it drains",
            context={
                "spool": str(self.directory),
                "records": depth.records,
                "bytes": depth.bytes,
                "max_records": self.max_records,
                "max_bytes": self.max_bytes,
            },
        )

    async def _write_loop(self) -> None:
        group: list[_Pending] = []
        try:
            while self._queue:
                pause = self._last_sync + self.fsync_interval_s - time.monotonic()
                if pause > 0:  # let a burst gather into one fsync
                    await asyncio.sleep(pause)
                group, self._queue = self._queue, []
                async with self._lock:
                    await self._commit(group)
        except asyncio.CancelledError:  # the loop is shutting down: release every caller
            for pending in (*group, *self._queue):
                pending.future.cancel()
            raise
        finally:
            self._writer = None

    async def _commit(self, group: list[_Pending]) -> None:
        data = b"".join(frame for pending in group for frame in pending.frames)
        count = sum(len(pending.frames) for pending in group)
        self._last_sync = time.monotonic()
        try:
            if self._fd is None or self._segments[-1].size >= self.segment_bytes:
                await self._rotate()
            await asyncio.to_thread(self._write_sync, data)
        except OSError as exc:
            logger.error("spool %s: writing %d records failed: %r", self.directory, count, exc)
            outcome: int | BaseException = StorageUnavailableError(
                f"spool {self.directory}: writing to disk failed: {exc}",
                context={"spool": str(self.directory), "os_error": str(exc)},
            )
        else:
            outcome = self._next_seq
            self._segments[-1].size += len(data)
            self._segments[-1].count += count
            self._next_seq += count
            self._disk_bytes += len(data)
        self.fsyncs += 1
        self._queued_records -= count
        self._queued_bytes -= len(data)
        self._report_depth()
        for pending in group:
            if not pending.future.done():
                _settle(pending.future, outcome)
            if isinstance(outcome, int):
                outcome += len(pending.frames)
        self._committed.set()
        self._committed = asyncio.Event()

    async def _rotate(self) -> None:
        path, fd = await asyncio.to_thread(create_segment, self.directory, self._next_seq)
        self._close_fd()
        self._fd = fd
        self._segments.append(_Segment(self._next_seq, path, 0, HEADER_BYTES))
        self._disk_bytes += HEADER_BYTES

    def _write_sync(self, data: bytes) -> None:
        """In a worker thread, under the lock: write and fsync; on failure cut
        the segment back to its committed size (or stop taking records)."""
        assert self._fd is not None  # noqa: S101 - _commit rotated
        try:
            append_all(self._fd, data)
        except OSError:
            try:
                os.ftruncate(self._fd, self._segments[-1].size)
                os.fsync(self._fd)
            except OSError as exc:
                self._broken = exc
            raise

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _start_in(segment: _Segment, start: SpoolCursor) -> tuple[int, int]:
    """The first sequence number and byte offset to read in `segment` from `start`."""
    if segment.base == start.segment:
        return start.seq, start.offset
    return segment.base, HEADER_BYTES


def _segment_of(segments: list[_Segment], seq: int) -> int:
    for segment in segments:
        if segment.base <= seq < segment.base + segment.count:
            return segment.base
    return segments[-1].base if segments else seq


def _settle(future: asyncio.Future[int], outcome: int | BaseException) -> None:
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _check_bounds(max_bytes: int, max_records: int, fsync_interval_s: float) -> None:
    if max_bytes < 4096 or max_records < 1 or not 0 <= fsync_interval_s <= 1:
        raise ValueError(
            f"spool bounds: max_bytes ({max_bytes}) must be at least 4096, max_records "
            f"({max_records}) at least 1, fsync_interval_s ({fsync_interval_s}) within 0..1"
        )
