"""A redis-server process of a test's own, with its data on disk, on a free loopback
port: for the fault tests that kill Redis and restart it on its data."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: object, what: str, timeout_s: float = 20.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class RedisProcess:
    """A redis-server that keeps its data (AOF, fsync every write) in `folder`."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        """Start it (again, on the same data) and wait until it answers."""
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder),
             "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.answers, f"redis-server on {self.port}")
        return self

    def answers(self) -> bool:
        with redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5) as conn:
            try:
                return bool(conn.ping())
            except (redis.RedisError, OSError):
                return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final flush."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
