"""Soda Cloud runners (REST API v1).

Contract: Soda's Runners API page and its OpenAPI (``GET/POST /api/v1/runners``,
``GET/DELETE /api/v1/runners/{runnerId}``), with the notes on auth, trace ids
and ``versions.runner``. Soda has no health endpoint; health is derived from
``isOnline`` and ``lastSeenTimestamp`` of the runner itself.
"""

from __future__ import annotations

import base64
import collections
import functools
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Final, Unpack

import attrs
import cattrs

from .. import errors
from .._convert import as_str, make_wire_converter, parse_timestamp, structure
from .._http import ClientOptions, HTTPCore, Route, VendorSpec
from .._sansio import ErrorInfo, error_code, error_text, json_object
from ..limits import RateLimit
from ..models import (
    CreatedRunner,
    Runner,
    RunnerCredentials,
    RunnerHealth,
    RunnerKind,
    RunnerStatus,
    Secret,
    build_runner,
)
from ..provider import Capability, CredentialField, VendorOption
from ._base import ProviderBase

__all__ = ["REGIONS", "SodaProvider", "health_from_runner", "parse_error", "runner_from_wire"]

REGIONS: Final[Mapping[str, str]] = {
    "eu": "https://cloud.soda.io",
    "us": "https://cloud.us.soda.io",
}


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
    """Soda's ``ErrorResponse`` body, ``{"code": str, "message": str}`` (OpenAPI).

    Anything else (a gateway's HTML page, an empty body) gives an empty
    :class:`ErrorInfo`, and the core describes the status instead.
    """
    data = json_object(headers, body)
    if data is None:
        return ErrorInfo()
    return ErrorInfo(code=error_code(data.get("code")), message=error_text(data.get("message")))


# Documented per operation as "N requests/60 seconds"; test-login as 10/10 s.
SODA: Final = VendorSpec(
    name="soda",
    limits={
        "list_runners": (RateLimit(60, 60),),
        "create_runner": (RateLimit(10, 60),),
        "get_runner": (RateLimit(1000, 60),),
        "delete_runner": (RateLimit(10, 60),),
        "verify": (RateLimit(10, 10),),
    },
    trace_headers=("X-Soda-Trace-Id",),
    parse_error=parse_error,
)

_LIST: Final = Route("list_runners", "GET", "/api/v1/runners")
_CREATE: Final = Route("create_runner", "POST", "/api/v1/runners")
_GET: Final = Route("get_runner", "GET", "/api/v1/runners/{runner_id}")
_DELETE: Final = Route("delete_runner", "DELETE", "/api/v1/runners/{runner_id}")
_VERIFY: Final = Route("verify", "GET", "/api/v1/test-login")

_KINDS: Final[Mapping[str, RunnerKind]] = {
    "SELF_HOSTED": RunnerKind.SELF_HOSTED,
    "SODA_HOSTED": RunnerKind.MANAGED,
}

_NO_KIND: Final = RunnerKind.UNKNOWN
# Enum members bound once: ``RunnerStatus.ONLINE`` costs a metaclass lookup per use.
_ONLINE: Final = RunnerStatus.ONLINE
_OFFLINE: Final = RunnerStatus.OFFLINE
_NO_STATUS: Final = RunnerStatus.UNKNOWN

_PAGE_SIZES: Final = range(10, 1001)
_CONSISTENT_TRIES: Final = 3
# Pages whose ids a listing remembers to yield each runner once (memory stays bounded).
_REMEMBERED_PAGES: Final = 8
# A listing reads at most _GROWTH times the pages page 0 announces (plus 2), and never
# more than _MAX_RUNNERS runners' worth: a vendor that keeps raising its totals ends.
_GROWTH: Final = 2
_MAX_RUNNERS: Final = 10_000_000


@functools.cache
def _wire() -> cattrs.Converter:
    # Built on first use rather than at import: a converter costs ~2 ms to set up.
    return make_wire_converter()


@attrs.frozen
class _Page:
    # Spring-style envelope; every field is required by the OpenAPI.
    content: list[Any]
    first: bool
    last: bool
    number: int
    size: int
    totalElements: int  # noqa: N815 - wire name
    totalPages: int  # noqa: N815 - wire name


@attrs.frozen
class _Created:
    apiKeyId: str  # noqa: N815 - wire name
    apiKeySecret: str  # noqa: N815 - wire name


def runner_from_wire(data: Any, account: str) -> Runner:
    """Map a ``PublicApiRunnerDTO`` to a :class:`Runner`.

    Every DTO field is optional in the OpenAPI; only ``id`` is needed here.
    Unknown ``type`` values map to ``RunnerKind.UNKNOWN`` and stay in ``raw``.

    Raises:
        ResponseFormatError: when ``data`` is not an object with a string ``id``.
    """
    return _to_runner(data, account, _runner_id(data))


def _to_runner(data: dict[str, Any], account: str, runner_id: str) -> Runner:
    # runner_from_wire once the id is known to be good (listings check a page first).
    name = data.get("name")
    kind = data.get("type")
    online = data.get("isOnline")  # only JSON true/false count; 1 and 0 do not
    versions = data.get("versions")
    if isinstance(versions, dict):
        # Usually every value is a non-empty string and a plain copy will do.
        for version in versions.values():
            if not isinstance(version, str) or not version:
                versions = {k: v for k, v in versions.items() if isinstance(v, str) and v}
                break
        else:
            versions = dict(versions)
    else:
        versions = {}
    # build_runner is Runner(...) with every field in order: provider, account, id,
    # name, kind, status, description, last_seen, versions, raw.
    return build_runner(
        "soda",
        account,
        runner_id,
        name if isinstance(name, str) and name else runner_id,
        _KINDS.get(kind, _NO_KIND) if isinstance(kind, str) else _NO_KIND,
        _ONLINE if online is True else _OFFLINE if online is False else _NO_STATUS,
        as_str(data.get("label")),
        parse_timestamp(data.get("lastSeenTimestamp")),
        versions,
        data,
    )


def _runner_id(data: Any) -> str:
    """The id of a ``PublicApiRunnerDTO``: all :func:`runner_from_wire` requires of it.

    Raises:
        ResponseFormatError: when ``data`` is not an object with a string ``id``.
    """
    if not isinstance(data, dict):
        raise errors.ResponseFormatError("runner: expected a JSON object")
    runner_id = data.get("id")
    if not isinstance(runner_id, str) or not runner_id:
        raise errors.ResponseFormatError("runner: missing or non-string id")
    return runner_id


def health_from_runner(runner: Runner) -> RunnerHealth:
    """Soda has no health endpoint: health is the runner's own online flag and last poll."""
    return RunnerHealth(status=runner.status, checked_at=runner.last_seen, raw=runner.raw)


class SodaProvider(ProviderBase):
    """Soda Cloud runners of one organisation.

    Args:
        api_key_id: API key id (Basic auth user name).
        api_key_secret: API key secret (Basic auth password).
        token: Alternatively, a pre-authenticated ``token`` cookie value.
        region: ``"eu"`` (https://cloud.soda.io) or ``"us"`` (https://cloud.us.soda.io);
            ignored when ``base_url`` is given.
        base_url: Another API host, e.g. a sandbox.
        account: Label used in models and errors; default ``"soda-<region>"``.
        session: An ``aiohttp.ClientSession`` to borrow; it is never closed here.
        rate_limits: Overrides of the documented limits by operation name
            (``list_runners``, ``get_runner``, ``create_runner``, ``delete_runner``,
            ``verify``); None removes a limit.
        limiter: A :class:`runnerhub.limits.Limiter` to use instead of the
            event loop's shared in-process one; the caller keeps ownership.
        timeout: Seconds per attempt (default 30).
        deadline: Seconds for a whole call including retries (default none).
        max_retries: Retries after the first attempt (default 4; 0 disables).
        retry: A full :class:`runnerhub.RetryPolicy` instead.
        max_response_bytes: Refuse larger bodies (default 16 MiB).
        connector_limit: Connections the owned session may open (default 64).
        allow_insecure_http: Permit ``http://`` to a non-loopback host.

    Raises:
        UsageError: for missing or malformed credentials, an unknown region,
            or an insecure base URL.
    """

    provider: ClassVar[str] = "soda"
    title: ClassVar[str] = "Soda Cloud"
    credentials: ClassVar[tuple[CredentialField, ...]] = (
        CredentialField("api_key_id", "SODA_API_KEY_ID", secret=False),
        CredentialField("api_key_secret", "SODA_API_KEY_SECRET"),
        CredentialField("token", "SODA_TOKEN"),
    )
    options: ClassVar[tuple[VendorOption, ...]] = (
        VendorOption(
            "region", "Soda Cloud region (ignored with base_url)", "SODA_REGION", tuple(REGIONS)
        ),
    )
    capabilities = frozenset(
        {Capability.LIST, Capability.GET, Capability.CREATE, Capability.DELETE, Capability.HEALTH}
    )
    #: Soda's documented limits, by operation; ``rate_limits=`` overrides them.
    default_limits: ClassVar[Mapping[str, tuple[RateLimit, ...]]] = SODA.limits

    def __init__(
        self,
        api_key_id: str | None = None,
        api_key_secret: str | None = None,
        *,
        token: str | None = None,
        region: str = "eu",
        **options: Unpack[ClientOptions],
    ) -> None:
        if region not in REGIONS:
            raise errors.UsageError(f"region must be one of {sorted(REGIONS)}, got {region!r}")
        if api_key_id is not None or api_key_secret is not None:
            if token is not None:
                raise errors.UsageError("give an API key pair or a token, not both")
            if not api_key_id or not api_key_secret:
                raise errors.UsageError("api_key_id and api_key_secret go together")
            if ":" in api_key_id:
                raise errors.UsageError("api_key_id must not contain ':'")
            pair = f"{api_key_id}:{api_key_secret}".encode()
            auth = {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
            credential_id = api_key_id
            for name, value in (("api_key_id", api_key_id), ("api_key_secret", api_key_secret)):
                _check_printable(name, value)
        elif token is not None:
            if not token:
                raise errors.UsageError("token must be a non-empty string")
            _check_printable("token", token)
            if ";" in token or "," in token:
                raise errors.UsageError("token contains a character not allowed in a cookie")
            auth = {"Cookie": f"token={token}"}
            credential_id = "token:" + token
        else:
            raise errors.UsageError("SodaProvider needs api_key_id and api_key_secret, or token")
        self._http = HTTPCore(
            SODA,
            auth_headers=auth,
            credential_id=credential_id,
            default_base_url=REGIONS[region],
            default_account=f"soda-{region}" if "base_url" not in options else "soda",
            options=options,
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **options: Unpack[ClientOptions]
    ) -> SodaProvider:
        """Build from ``SODA_API_KEY_ID``, ``SODA_API_KEY_SECRET`` (or ``SODA_TOKEN``),
        ``SODA_REGION`` and ``SODA_BASE_URL``.

        Raises:
            UsageError: when the credentials are not set.
        """
        env = os.environ if environ is None else environ
        if env.get("SODA_BASE_URL") and "base_url" not in options:
            options["base_url"] = env["SODA_BASE_URL"]
        region = env.get("SODA_REGION") or "eu"
        if env.get("SODA_TOKEN") and not env.get("SODA_API_KEY_ID"):
            return cls(token=env["SODA_TOKEN"], region=region, **options)
        key_id, secret = env.get("SODA_API_KEY_ID"), env.get("SODA_API_KEY_SECRET")
        if not key_id or not secret:
            raise errors.UsageError("set SODA_API_KEY_ID and SODA_API_KEY_SECRET (or SODA_TOKEN)")
        return cls(key_id, secret, region=region, **options)

    async def verify(self) -> str:
        """Check the credentials with ``GET /api/v1/test-login``; return the organisation name.

        Raises:
            AuthenticationError: for wrong credentials or the wrong region.
        """
        data = await self._http.request_json(_VERIFY)
        name = data.get("organisationName") if isinstance(data, dict) else None
        if not isinstance(name, str):
            raise self._http.format_error(_VERIFY.operation, "test-login: no organisationName")
        return name

    def list_runners(
        self, *, page_size: int = 1000, consistent: bool = False
    ) -> AsyncIterator[Runner]:
        """Yield every runner, one page request at a time as the caller consumes them.

        A listing is not atomic. A runner created while it runs may be missed;
        a runner deleted while it runs can shift another one back onto a page
        already read, and that one is missed. A runner shifted forward onto a
        later page by insertions is yielded once: the ids of the last 8 pages
        are remembered (bounded memory), so a duplicate would take more than 8
        pages of insertions between two page reads. An id repeated within a
        page is yielded once. A page whose ``number`` is not the one asked for
        (a proxy dropping the query) raises ``ResponseFormatError``.

        A listing always ends. Besides ``last``, ``totalPages`` and an empty
        page, it stops at a page that brings no runner not already listed, or
        when it reaches the pages ``totalElements`` allows: cleanly when the
        runners listed reach ``totalElements``, else with
        ``ResponseFormatError``. It also raises after reading twice the pages
        page 0 announced plus 2 (a vendor that keeps raising its totals), and
        never reads more than 10,000,000 runners' worth of pages.

        Args:
            page_size: Runners per request, 10..1000 (Soda's bounds).
            consistent: Read every page first, then re-read page 0 and yield
                only if ``totalElements`` did not change, equals the runners
                seen, and page 0 holds the same ids; otherwise read again (3
                tries). Costs one request more and memory for the whole
                listing (bounded by the page cap above); every id is
                remembered, so each runner is yielded at most once. A creation
                and a deletion that cancel out beyond page 0 stay invisible to it.

        Raises:
            UsageError: for a page size out of bounds.
            InconsistentListingError: when ``consistent`` and the fleet kept changing.
            ResponseFormatError: for a page of the wrong shape or number, or a
                listing that would not end (see above).
        """
        # The generator is returned, not re-yielded: a hop less per runner. Each checks
        # page_size when iteration starts, as an async generator method would.
        if consistent:
            return self._consistent(page_size)
        return self._pages(page_size)

    async def _consistent(self, page_size: int) -> AsyncIterator[Runner]:
        _check_page_size(page_size)
        for _ in range(_CONSISTENT_TRIES):
            first: list[_Page] = []
            runners = [runner async for runner in self._pages(page_size, first)]
            check = await self._page(0, page_size)
            if (
                first
                and first[0].totalElements == check.totalElements == len(runners)
                and _ids(first[0]) == _ids(check)
            ):
                for runner in runners:
                    yield runner
                return
        raise errors.InconsistentListingError(
            f"the runner list changed during each of {_CONSISTENT_TRIES} listings",
            provider=self.provider,
            account=self.account,
            operation=_LIST.operation,
        )

    async def _page(self, number: int, size: int) -> _Page:
        # request + decode rather than request_json: one coroutine less per page.
        response = await self._http.request(_LIST, query={"page": number, "size": size})
        data = self._http.decode(_LIST, response)
        try:
            return structure(_wire(), data, _Page, "runner page")
        except errors.ResponseFormatError as exc:
            raise self._http.format_error(_LIST.operation, exc.message) from None

    async def _pages(
        self, page_size: int, first: list[_Page] | None = None
    ) -> AsyncIterator[Runner]:
        # With ``first`` (a consistent listing, which holds every runner anyway) every id
        # is remembered; otherwise those of the last _REMEMBERED_PAGES pages.
        _check_page_size(page_size)
        account = self.account
        # id -> number of the last page it was on.
        remembered: dict[str, int] = {}
        pages: collections.deque[list[str]] = collections.deque()
        number = 0
        listed = 0
        cap = _MAX_RUNNERS // page_size  # until page 0 announces its total
        while True:
            page = await self._page(number, page_size)
            if page.number != number:
                message = f"asked for page {number}, got page {page.number}"
                raise self._http.format_error(_LIST.operation, message)
            if number == 0:
                if first is not None:
                    first.append(page)
                cap = min(cap, _GROWTH * _page_count(page.totalElements, page_size) + 2)
            content = page.content
            try:
                ids = [_runner_id(item) for item in content]
            except errors.ResponseFormatError as exc:
                raise self._http.format_error(_LIST.operation, exc.message) from None
            # Every item now maps without error, so each Runner is built only as it is
            # yielded: a page's worth of Runners never sits in memory at once.
            before = listed
            for item, runner_id in zip(content, ids, strict=True):
                if runner_id not in remembered:
                    remembered[runner_id] = number
                    listed += 1
                    yield _to_runner(item, account, runner_id)
            # Every id of this page was last seen here (one C-level update, not one per item).
            remembered.update(dict.fromkeys(ids, number))
            if first is None:
                pages.append(ids)
                if len(pages) > _REMEMBERED_PAGES:
                    oldest = number - _REMEMBERED_PAGES
                    for runner_id in pages.popleft():
                        if remembered.get(runner_id) == oldest:
                            del remembered[runner_id]
            if page.last or not content or number + 1 >= page.totalPages:
                return
            # Termination: each further page must bring a new runner and stay within
            # what totalElements allows, and the listing within _GROWTH times page 0's.
            complete = listed >= page.totalElements
            allowed = _page_count(page.totalElements, page_size)
            if listed == before or number + 1 >= allowed:
                if complete:
                    return  # the vendor's own count says every runner was listed
                message = (
                    f"page {number} brought no runner not already listed"
                    if listed == before
                    else f"page {number + 1} is past the {allowed} pages that "
                    f"totalElements={page.totalElements} allows"
                )
                raise self._http.format_error(_LIST.operation, message)
            number += 1
            if number >= cap:
                message = f"the listing reached its cap of {cap} pages without an end"
                raise self._http.format_error(_LIST.operation, message)

    async def get_runner(self, runner_id: str) -> Runner:
        """Return one runner.

        Raises:
            NotFoundError: when Soda knows no runner with this id.
        """
        # request + decode rather than request_json: one coroutine less per call.
        response = await self._http.request(_GET, {"runner_id": runner_id})
        data = self._http.decode(_GET, response)
        if not isinstance(data, dict) or "runner" not in data:
            raise self._http.format_error(_GET.operation, "expected an object with 'runner'")
        try:
            return runner_from_wire(data["runner"], self.account)
        except errors.ResponseFormatError as exc:
            raise self._http.format_error(_GET.operation, exc.message) from None

    async def create_runner(self, name: str | None = None) -> CreatedRunner:
        """Mint credentials for a new self-hosted runner (Soda sends them only once).

        The runner appears in listings only after it registers with these
        credentials; Soda returns no runner id. ``name`` is not sent (the
        endpoint takes no body); the runner's name comes from its Helm values.
        The request is never retried after it may have reached Soda, since each
        create mints a new key.
        """
        data = await self._http.request_json(_CREATE)
        try:
            created = structure(_wire(), data, _Created, "created runner")
        except errors.ResponseFormatError as exc:
            raise self._http.format_error(_CREATE.operation, exc.message) from None
        return CreatedRunner(
            name=name,
            credentials=RunnerCredentials(created.apiKeyId, Secret(created.apiKeySecret)),
            raw={"apiKeyId": created.apiKeyId, "apiKeySecret": "**********"},
        )

    async def delete_runner(self, runner_id: str) -> None:
        """Delete a self-hosted runner.

        Raises:
            BadRequestError: when the runner is in use, or Soda-hosted.
            NotFoundError: when there is no such runner.
        """
        await self._http.request(_DELETE, {"runner_id": runner_id})

    async def runner_health(self, runner_id: str) -> RunnerHealth:
        """Health derived from ``isOnline`` and ``lastSeenTimestamp`` (one GET)."""
        return health_from_runner(await self.get_runner(runner_id))


def _check_page_size(page_size: int) -> None:
    if page_size not in _PAGE_SIZES:
        raise errors.UsageError(f"page_size must be within 10..1000, got {page_size!r}")


def _page_count(total: int, page_size: int) -> int:
    """Pages that ``total`` runners fill at ``page_size`` a page (at least 1)."""
    return max(1, -(-max(total, 0) // page_size))


def _ids(page: _Page) -> list[Any]:
    return [item.get("id") if isinstance(item, dict) else None for item in page.content]


def _check_printable(name: str, value: str) -> None:
    if not isinstance(value, str) or not value.isprintable():
        raise errors.UsageError(f"{name} must be a printable string")
