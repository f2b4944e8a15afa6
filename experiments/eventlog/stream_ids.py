"""Redis stream ids (`<ms>-<seq>`) as values that sort like Redis orders them."""

from __future__ import annotations


def parse_stream_id(stream_id: str | bytes) -> tuple[int, int]:
    """`"<ms>-<seq>"` as a tuple that sorts like Redis orders stream ids."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = text.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        raise ValueError(f"{text!r} is not a stream id (<ms>-<seq>)") from None
