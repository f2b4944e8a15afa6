"""File mode: the flag file is watched and a valid edit is served within a second.

`FlagFileWatcher.run()` polls the file's modification time, size and inode every
`interval_s` (250 ms by default; no file-system notification library). A change
is read, validated as a whole (strict flagd rules, the catalog, split weights)
and handed to `provider.update`; a broken edit is logged with the file, the
flag, the path and the problem, and the last good flags keep serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from ..catalog import Catalog
from ..errors import FlagValidationError
from ..flags import VoxrouteProvider
from ..flags.checks import ValidatedFlagSet, validate_flag_set
from ..flags.loader import decode, format_of
from .documents import FlagSetDraft, draft_from_flagd

logger = logging.getLogger("voxroute.flags")

DEFAULT_POLL_S = 0.25
Signature = tuple[int, int, int] | None


def _signature(path: Path) -> Signature:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


def load_flag_file(path: Path, catalog: Catalog) -> tuple[FlagSetDraft, ValidatedFlagSet]:
    """Read and check the flag file as a whole (raises `FlagValidationError`)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlagValidationError(f"cannot read the flag file: {exc}", source=source) from exc
    data = decode(text, format_of(path), source=source)
    draft = draft_from_flagd(data, source=source)
    return draft, validate_flag_set(data, catalog, source=source)


class FlagFileWatcher:
    """Serves the flag file's last good content (see the module docstring).

    `draft` is that content as written; `last_error` the problem of a refused edit.
    """

    def __init__(
        self,
        path: Path,
        provider: VoxrouteProvider,
        catalog: Catalog,
        *,
        interval_s: float = DEFAULT_POLL_S,
    ) -> None:
        self.path = path
        self.provider = provider
        self.catalog = catalog
        self.interval_s = interval_s
        self.last_error: str | None = None
        self._seen = _signature(path)
        self.draft, _ = load_flag_file(path, catalog)
        self._task: asyncio.Task[None] | None = None

    def check(self) -> bool:
        """Reload when the file changed since the last look; True when new flags serve."""
        signature = _signature(self.path)
        if signature == self._seen:
            return False
        self._seen = signature
        return self.reload()

    def reload(self) -> bool:
        try:
            draft, validated = load_flag_file(self.path, self.catalog)
        except FlagValidationError as exc:
            self.last_error = exc.message
            logger.error(
                "flags: refused the edit of %s (%s); the last good flags keep serving",
                self.path, exc.message,
                extra={"flags_file": str(self.path), "flag_key": exc.flag_key,
                       "flag_path": exc.path, "problem": exc.problem},
            )  # fmt: skip
            return False
        self.draft, self.last_error = draft, None
        changed = self.provider.update(validated.compiled)
        logger.info("flags: reloaded %s; changed: %s", self.path, ", ".join(changed) or "nothing")
        return True

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name="voxroute-flag-file")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.check()
            except Exception:  # a bug must not stop the watching
                logger.exception("flags: watching %s failed", self.path)
