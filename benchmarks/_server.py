"""A stripped-down Soda v1 server for the CPU benchmarks, run in its own process.

It speaks just enough HTTP/1.1 (keep-alive, no bodies) on a raw asyncio
protocol and answers from pre-built bytes, so that the client, not the
server, is what the benchmarks measure. Its configuration travels in the base
URL, so one server serves every case::

    http://127.0.0.1:PORT/<total>/<latency_ms>/api/v1/runners?page=P&size=S
    http://127.0.0.1:PORT/<total>/<latency_ms>/api/v1/runners/<id>      (GET, DELETE)

Runner payloads are 1,000 ``PublicApiRunnerDTO`` objects seeded by
``runnerhub.sandbox`` (the emulator's own generator, never the client's),
serialised once. A page is generated on the fly by writing its page number
into the first 8 hex digits of each id (one ``bytes.join``), so ids are
unique across a listing and 1,000,000 runners are never held anywhere.
Credentials are not checked. The event loop busy-polls (it never sleeps in
``epoll_wait``), so a client's request never pays for waking the server: what
the benchmarks time is the client's own work.

    python -m benchmarks._server        # prints "READY <base url>", serves until stdin closes
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs

TEMPLATE_RUNNERS: Final = 1000
_MARK: Final = b"@@@@@@@@"  # 8 bytes, replaced by the page number in hex
_MAX_HEAD: Final = 64 * 1024


def template_runners() -> list[dict[str, Any]]:
    """The 1,000 seeded runner payloads every page is cut from."""
    from datetime import UTC, datetime

    from runnerhub.sandbox import Sandbox

    sandbox = Sandbox(seed=2024, reference_time=datetime(2025, 1, 1, tzinfo=UTC))
    org = sandbox.add_org("soda", "bench-eu", runners=TEMPLATE_RUNNERS)
    return list(org.runners.values())


class Pages:
    """Soda list and get bodies, built from the template runners."""

    def __init__(self, runners: list[dict[str, Any]]) -> None:
        marked = []
        for runner in runners:
            payload = {**runner, "id": _MARK.decode() + runner["id"][8:]}
            marked.append(json.dumps(payload, separators=(",", ":")).encode())
        self._marked = marked
        self._pieces: dict[int, list[bytes]] = {}
        self.get_body = json.dumps({"runner": runners[1]}, separators=(",", ":")).encode()

    def page(self, total: int, number: int, size: int) -> bytes:
        """The body of ``GET /api/v1/runners?page=number&size=size`` for ``total`` runners."""
        pages = -(-total // size)
        count = max(0, min(size, total - number * size))
        pieces = self._pieces.get(count)
        if pieces is None:
            content = b",".join(self._marked[i % len(self._marked)] for i in range(count))
            pieces = self._pieces[count] = content.split(_MARK)
        content = (b"%08x" % number).join(pieces)
        tail = (
            f'],"first":{_js(number == 0)},"last":{_js(number >= pages - 1)},'
            f'"number":{number},"size":{size},"totalElements":{total},"totalPages":{pages}}}'
        )
        return b'{"content":[' + content + tail.encode()


def _js(flag: bool) -> str:
    return "true" if flag else "false"


def _response(status: bytes, body: bytes) -> bytes:
    head = (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
        b"X-Soda-Trace-Id: 0123456789abcdef\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    return head + body


class _Protocol(asyncio.Protocol):
    def __init__(self, pages: Pages) -> None:
        self._pages = pages
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head, buffer = buffer[:end], buffer[end + 4 :]
            self._answer(head)
        if len(buffer) > _MAX_HEAD and self._transport is not None:
            self._transport.close()
        self._buffer = buffer

    def _answer(self, head: bytes) -> None:
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = line.partition(" ")
        target = rest.rpartition(" ")[0]
        path, _, query = target.partition("?")
        latency, data = self._route(method, path, query)
        transport = self._transport
        if transport is None:
            return
        if latency > 0:
            self._loop.call_later(latency, _write, transport, data)
        else:
            transport.write(data)

    def _route(self, method: str, path: str, query: str) -> tuple[float, bytes]:
        parts = path.split("/")
        # ['', total, latency_ms, 'api', 'v1', 'runners', (id)]
        try:
            total, latency = int(parts[1]), int(parts[2]) / 1000
        except (IndexError, ValueError):
            return 0.0, _response(b"404 Not Found", b'{"code":"not_found","message":"?"}')
        tail = parts[3:]
        if tail == ["api", "v1", "runners"] and method == "GET":
            params = parse_qs(query)
            number = int(params.get("page", ["0"])[0])
            size = int(params.get("size", ["10"])[0])
            return latency, _response(b"200 OK", self._pages.page(total, number, size))
        if len(tail) == 4 and tail[:3] == ["api", "v1", "runners"]:
            if method == "GET":
                return latency, _response(b"200 OK", self._pages.get_body)
            if method == "DELETE":
                return latency, _response(b"200 OK", b"{}")
        return latency, _response(b"404 Not Found", b'{"code":"not_found","message":"?"}')


def _keep_polling(loop: asyncio.AbstractEventLoop) -> None:
    # A callback always ready keeps the loop polling (select with a zero timeout) rather
    # than sleeping, so a client's send never has to wake this process: that wake-up is
    # charged to the client's syscall, and grows the more often the server goes idle.
    loop.call_soon(_keep_polling, loop)


def _write(transport: asyncio.Transport, data: bytes) -> None:
    if not transport.is_closing():
        transport.write(data)


async def _serve() -> None:
    pages = Pages(template_runners())
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Protocol(pages), "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    _keep_polling(loop)
    print(f"READY http://127.0.0.1:{port}", flush=True)
    # Serve until the parent closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


@contextmanager
def fast_server() -> Iterator[str]:
    """Run the server in a child process; yield its root URL (``http://127.0.0.1:PORT``)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"benchmark server failed to start: {line!r}")
        yield line.split()[1]
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.stdin is not None:
        process.stdin.close()  # the server's cue to exit
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


def base_url(root: str, *, total: int = 1000, latency_ms: int = 0) -> str:
    """The base URL of a Soda account with ``total`` runners answering after ``latency_ms``."""
    return f"{root}/{total}/{latency_ms}"


if __name__ == "__main__":
    asyncio.run(_serve())
