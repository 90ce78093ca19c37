"""A real ``redis-server`` on a free 127.0.0.1 port, for tests and benchmarks.

No persistence (``--save "" --appendonly no``), its working directory a temp
dir removed on stop. Only the process this object started is ever stopped.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from types import TracebackType
from typing import Self

__all__ = ["RedisServer", "redis_server_binary"]

_STARTUP_SECONDS = 10.0


def redis_server_binary() -> str | None:
    """The path of ``redis-server`` on PATH, or None."""
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process; ``start()`` picks a free port, ``restart()`` reuses it.

    Args:
        binary: The ``redis-server`` executable (default: found on PATH).
    """

    def __init__(self, binary: str | None = None) -> None:
        found = binary or redis_server_binary()
        if found is None:
            raise FileNotFoundError("redis-server is not on PATH")
        self.binary = found
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        if self.port is None:
            raise RuntimeError("the server was never started")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        """Start on a free port (a few tries if another process takes it first); return the URL."""
        for _ in range(5):
            self.port = _free_port()
            if self._spawn():
                return self.url
        raise RuntimeError("redis-server did not start on any free port")

    def restart(self) -> str:
        """Start again on the same port, empty (after :meth:`kill` or :meth:`stop`)."""
        if self.running:
            raise RuntimeError("redis-server is still running")
        if self.port is None:
            return self.start()
        deadline = time.monotonic() + _STARTUP_SECONDS
        while not self._spawn():  # the old socket may linger a moment
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not restart on port {self.port}")
            time.sleep(0.05)
        return self.url

    def _spawn(self) -> bool:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="runnerhub-redis-")
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir.name,
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        process = subprocess.Popen(  # noqa: S603 - fixed argv, our own binary path
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        assert self.port is not None
        deadline = time.monotonic() + _STARTUP_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:  # e.g. the port was taken meanwhile
                return False
            if _answers_ping(self.port):
                self._process = process
                return True
            time.sleep(0.02)
        process.kill()
        process.wait()
        return False

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; keep the port for :meth:`restart`."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and remove its directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
