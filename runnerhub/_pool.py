"""A connection pool many providers share: one ``aiohttp.ClientSession`` per event loop.

A provider that owns its session also owns a connector, so 10,000 accounts
would open up to 10,000 sockets at once and run out of descriptors under the
common 1,024 limit. :class:`SessionPool` is the zero-argument callable that
``ClientOptions["session"]`` accepts: every provider given the same pool sends
through one session whose connector never holds more than ``limit``
connections. The session carries no credentials and keeps no cookies, so
accounts stay apart: each provider sends its own auth headers on every
request, and a vendor's ``Set-Cookie`` for one account is never replayed for
another. Providers never close it; its owner (a :class:`~runnerhub.RunnerHub`
built from an accounts file, or the caller) does, with :meth:`SessionPool.aclose`.
"""

from __future__ import annotations

import asyncio
from typing import Final

import aiohttp

from . import errors

__all__ = ["DEFAULT_POOL_LIMIT", "SessionPool"]

DEFAULT_POOL_LIMIT: Final = 100
_DNS_CACHE_SECONDS: Final = 300


class SessionPool:
    """One bounded ``aiohttp.ClientSession`` per event loop, opened on first call.

    ``limit`` bounds the requests on the wire at once. A connection that
    finished a request stays open for the next one to the same host (keep-alive,
    closed after 15 s idle), and aiohttp does not count idle connections against
    ``limit``; so the descriptors a pool holds are bounded by ``limit_per_host``
    times the hosts it talks to (a few vendor hosts, whatever the accounts).

    Args:
        limit: Connections open at once, over every host (per event loop).
        limit_per_host: Connections open at once to one host, port and scheme;
            default ``limit``.

    Raises:
        UsageError: for a limit below 1.
    """

    __slots__ = ("_limit", "_limit_per_host", "_sessions")

    def __init__(
        self, *, limit: int = DEFAULT_POOL_LIMIT, limit_per_host: int | None = None
    ) -> None:
        per_host = limit if limit_per_host is None else limit_per_host
        if limit < 1 or per_host < 1:
            raise errors.UsageError("connection limits must be at least 1")
        self._limit = limit
        self._limit_per_host = per_host
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    def __repr__(self) -> str:
        return f"<SessionPool limit={self._limit} limit_per_host={self._limit_per_host}>"

    @property
    def limit(self) -> int:
        """Connections open at once, over every host."""
        return self._limit

    def __call__(self) -> aiohttp.ClientSession:
        """The running loop's session, opened now if it has none (or its one was closed).

        Raises:
            RuntimeError: when no event loop is running.
        """
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            # Sessions of loops that are gone can never be used again.
            for old in [old for old in self._sessions if old.is_closed()]:
                del self._sessions[old]
            session = self._sessions[loop] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._limit,
                    limit_per_host=self._limit_per_host,
                    ttl_dns_cache=_DNS_CACHE_SECONDS,
                ),
                # Shared by many accounts: no cookie may pass from one to another.
                cookie_jar=aiohttp.DummyCookieJar(),
                raise_for_status=False,
            )
        return session

    async def aclose(self) -> None:
        """Close the running loop's session; a later call opens a new one."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None and not session.closed:
            await session.close()
