"""The disk spool: the writes Redis cannot take, kept on local disk and replayed.

- `disk_spool`: `DiskSpool`, a bounded, crash-safe queue of records in one folder.
- `segment_files`: its files (frames, segments, the ack file), read and written.
- `spooling_logs`: `SpooledSessionLog` / `SpooledOutcomeLog`, the Redis logs
  wrapped so that writes go to the spool while Redis is away.
- `replay`: `SpoolReplayer`, which sends the spool to Redis in order once it
  answers, and `SpooledLogs`, the logs, spool and replayer opened together.
"""

from __future__ import annotations

from .disk_spool import DiskSpool, SpoolRecord
from .replay import SpooledLogs, SpoolReplayer
from .spooling_logs import SpooledOutcomeLog, SpooledSessionLog, Spooler

__all__ = [
    "DiskSpool",
    "SpoolRecord",
    "SpoolReplayer",
    "SpooledLogs",
    "SpooledOutcomeLog",
    "SpooledSessionLog",
    "Spooler",
]
