"""The spool's files (see `disk_spool` for the format): frames, segments, the ack file.

Blocking functions, run by `DiskSpool` at open or in a worker thread.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import ErrorCode, ExperimentError

logger = logging.getLogger("voxroute.spool")

MAGIC = b"VRSPOOL1"
HEADER_BYTES = len(MAGIC)
MAX_FRAME_BYTES = 64 * 1024 * 1024
ACK_NAME = "ack"
LOCK_NAME = "lock"
_SEGMENT_NAME = re.compile(r"^(\d{20})\.seg$")
_FRAME_HEAD = struct.Struct(">II")  # length of kind + payload, CRC32 of length bytes + body
_ACK = struct.Struct(">QI")  # sequence number, CRC32 of its 8 bytes
_READ_BUFFER = 1 << 20

ReadPlan = Sequence[tuple[Path, int, int, int, int]]  # path, base, first seq, offset, end
ReadRow = tuple[int, int, bytes, tuple[int, int, int]]  # seq, kind, payload, end cursor


class SpoolCorruptError(ExperimentError):
    """A spool file is damaged where a crash cannot have torn it; names the file
    and byte. Move the folder aside to start with an empty spool."""

    code = ErrorCode.STORAGE_UNAVAILABLE


class SpoolLockedError(ExperimentError):
    """Another process holds the spool folder (two writers would corrupt it)."""

    code = ErrorCode.STORAGE_UNAVAILABLE


class _BadFrameError(Exception):
    """A torn or damaged frame (internal)."""


@dataclass(frozen=True, slots=True)
class ScannedSegment:
    base: int
    path: Path
    count: int
    size: int


def encode_frame(kind: int, payload: bytes) -> bytes:
    """One frame: length, CRC32, kind byte, payload."""
    if not 0 <= kind <= 255:
        raise ValueError(f"spool record kind {kind} is not a byte (0..255)")
    body = kind.to_bytes(1, "big") + payload
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"spool record of {len(body)} bytes is over {MAX_FRAME_BYTES}")
    length = len(body).to_bytes(4, "big")
    return length + zlib.crc32(body, zlib.crc32(length)).to_bytes(4, "big") + body


def next_frame(file: BinaryIO) -> tuple[int, bytes, int] | None:
    """The next frame's kind, payload and size; None at a clean end of file."""
    head = file.read(_FRAME_HEAD.size)
    if not head:
        return None
    if len(head) < _FRAME_HEAD.size:
        raise _BadFrameError("torn frame header")
    length, crc = _FRAME_HEAD.unpack(head)
    if not 1 <= length <= MAX_FRAME_BYTES:
        raise _BadFrameError(f"impossible frame length {length}")
    body = file.read(length)
    if len(body) < length:
        raise _BadFrameError("torn frame")
    if zlib.crc32(body, zlib.crc32(head[:4])) != crc:
        raise _BadFrameError("CRC32 mismatch")
    return body[0], body[1:], _FRAME_HEAD.size + length


def create_segment(directory: Path, base: int) -> tuple[Path, int]:
    """A new segment file with its magic, fsynced with its folder; path and fd."""
    path = directory / f"{base:020d}.seg"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
    try:
        append_all(fd, MAGIC)
        fsync_folder(directory)
    except OSError:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    return path, fd


def append_all(fd: int, data: bytes) -> None:
    """Write every byte of `data`, then fsync."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def fsync_folder(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_ack(directory: Path, seq: int) -> None:
    """Replace the ack file atomically: write a temporary file, fsync, rename."""
    temporary = directory / (ACK_NAME + ".tmp")
    data = seq.to_bytes(8, "big")
    with temporary.open("wb") as file:
        file.write(_ACK.pack(seq, zlib.crc32(data)))
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, directory / ACK_NAME)
    fsync_folder(directory)


def read_frames(plan: ReadPlan, limit: int) -> list[ReadRow]:
    """At most `limit` frames of the committed byte ranges in `plan`."""
    rows: list[ReadRow] = []
    for path, base, first, start, end in plan:
        seq, offset = first, start
        with path.open("rb", buffering=_READ_BUFFER) as file:
            file.seek(offset)
            while offset < end and len(rows) < limit:
                kind, payload, size = _committed_frame(file, path, offset)
                offset += size
                seq += 1
                rows.append((seq - 1, kind, payload, (seq, base, offset)))
        if len(rows) >= limit:
            break
    return rows


def lock_folder(directory: Path) -> int:
    """Create the folder if missing and take its lock file (released when the
    returned fd is closed, or the process ends); `SpoolLockedError` if taken."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SpoolLockedError(
            f"spool {directory} is in use by another process; give each voxroute process "
            "its own spool folder",
            context={"spool": str(directory)},
        ) from None
    return fd


def open_folder(directory: Path) -> tuple[list[ScannedSegment], int, int]:
    """Scan the spool folder (creating it if missing): its segments, cutting a
    torn tail off the last one, and the acknowledged sequence number with its
    byte offset in its segment. Deletes segments that hold only acknowledged
    records. The caller holds the folder's lock."""
    (directory / (ACK_NAME + ".tmp")).unlink(missing_ok=True)
    named = sorted(
        (int(match[1]), path)
        for path in directory.iterdir()
        if (match := _SEGMENT_NAME.match(path.name))
    )
    segments: list[ScannedSegment] = []
    for index, (base, path) in enumerate(named):
        segment = _scan(path, base, last=index == len(named) - 1)
        if segment is None:
            continue
        if segments and segments[-1].base + segments[-1].count != base:
            raise SpoolCorruptError(
                f"spool segment {path}: starts at record {base}, but the previous segment "
                f"ends at record {segments[-1].base + segments[-1].count}",
                context={"spool": str(directory), "segment": str(path)},
            )
        segments.append(segment)
    ack = _acked_seq(directory, segments)
    for segment in [s for s in segments[:-1] if s.base + s.count <= ack]:
        segment.path.unlink()
        segments.remove(segment)
    return segments, ack, _offset_of(segments, ack)


def _committed_frame(file: BinaryIO, path: Path, offset: int) -> tuple[int, bytes, int]:
    try:
        frame = next_frame(file)
    except _BadFrameError as exc:
        frame, problem = None, str(exc)
    else:
        problem = "end of file"
    if frame is None:
        raise SpoolCorruptError(
            f"spool segment {path}: {problem} at byte {offset}, inside records already on disk",
            context={"segment": str(path), "offset": offset},
        )
    return frame


def _scan(path: Path, base: int, *, last: bool) -> ScannedSegment | None:
    """Count a segment's whole frames; cut a torn tail off the last segment."""
    with path.open("rb", buffering=_READ_BUFFER) as file:
        magic = file.read(HEADER_BYTES)
        if magic != MAGIC:
            if last and len(magic) < HEADER_BYTES and MAGIC.startswith(magic):
                logger.warning("spool segment %s: torn at creation, removed", path)
                path.unlink()
                return None
            raise SpoolCorruptError(
                f"spool segment {path}: not a voxroute spool segment (bad magic)",
                context={"segment": str(path)},
            )
        count, size, problem = 0, HEADER_BYTES, ""
        while True:
            try:
                frame = next_frame(file)
            except _BadFrameError as exc:
                problem = str(exc)
                break
            if frame is None:
                break
            count, size = count + 1, size + frame[2]
    if problem:
        _cut_torn_tail(path, size, problem, last=last)
    return ScannedSegment(base, path, count, size)


def _cut_torn_tail(path: Path, size: int, problem: str, *, last: bool) -> None:
    if not last:
        raise SpoolCorruptError(
            f"spool segment {path}: {problem} at byte {size}, in a segment that was "
            "complete on disk (not a crash's torn tail)",
            context={"segment": str(path), "offset": size},
        )
    torn = path.stat().st_size - size
    logger.warning(
        "spool segment %s: %s at byte %d; cut the torn tail (%d bytes)", path, problem, size, torn
    )
    with path.open("r+b") as file:
        file.truncate(size)
        os.fsync(file.fileno())


def _acked_seq(directory: Path, segments: list[ScannedSegment]) -> int:
    """The ack file's sequence number, within the segments' records."""
    first = segments[0].base if segments else 0
    end = segments[-1].base + segments[-1].count if segments else 0
    try:
        seq, crc = _ACK.unpack((directory / ACK_NAME).read_bytes())
    except FileNotFoundError:
        return first
    except (OSError, struct.error) as exc:
        logger.error("spool %s: unreadable ack file (%r); replaying every record", directory, exc)
        return first
    if zlib.crc32(seq.to_bytes(8, "big")) != crc:
        logger.error("spool %s: damaged ack file; replaying every record", directory)
        return first
    if not segments:
        return int(seq)
    if seq > end:
        raise SpoolCorruptError(
            f"spool {directory}: the ack file says record {seq} was replayed, but the "
            f"segments end at record {end}",
            context={"spool": str(directory)},
        )
    return max(int(seq), first)


def _offset_of(segments: list[ScannedSegment], seq: int) -> int:
    """The byte offset of record `seq` in its segment (the end of the last one
    when `seq` is past every record)."""
    for segment in segments:
        if segment.base <= seq < segment.base + segment.count:
            with segment.path.open("rb", buffering=_READ_BUFFER) as file:
                file.seek(HEADER_BYTES)
                offset = HEADER_BYTES
                for _ in range(seq - segment.base):
                    offset += _committed_frame(file, segment.path, offset)[2]
            return offset
    return segments[-1].size if segments else HEADER_BYTES
