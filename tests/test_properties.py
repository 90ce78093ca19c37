"""Hypothesis: every vendor mapping and header reader maps or raises a runnerhub error.

Allowed outcomes everywhere: a value of the right type, or a
:class:`runnerhub.errors.RunnerHubError`; never ``KeyError``, ``TypeError``,
``AttributeError``, ``ValueError`` or a cattrs exception. Example counts are
fixed per property (``EXAMPLES`` and friends) and reported in docs/hardening.md.
The Hypothesis database is off so that runs write nothing into the repository.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import aiohttp
import attrs
import pytest
import pytest_asyncio
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from runnerhub import (
    KubiyaProvider,
    Runner,
    RunnerHealth,
    RunnerKind,
    RunnerStatus,
    SodaProvider,
    errors,
)
from runnerhub._convert import parse_timestamp
from runnerhub._http import (
    Response,
    Route,
    encode_segment,
    error_from_response,
)
from runnerhub.models import HealthCheck as RunnerCheck
from runnerhub.retry import parse_rate_limit_reset, parse_retry_after
from runnerhub.sandbox import Sandbox, SodaOrg
from runnerhub.sandbox._soda import SodaService
from runnerhub.vendors import kubiya, soda

SAMPLES = Path(__file__).parent / "samples"

# Examples per property; docs/hardening.md reports these numbers.
# RUNNERHUB_EXAMPLES scales every count for a thorough local run (e.g. 10).
_SCALE = int(os.environ.get("RUNNERHUB_EXAMPLES", "1"))
EXAMPLES = 200 * _SCALE  # pure functions
WIRE_EXAMPLES = 100 * _SCALE  # whole listings over a loopback server
DRIFT_EXAMPLES = 60 * _SCALE  # listings whose org changes between pages

PURE = settings(max_examples=EXAMPLES, database=None, deadline=None)
WIRE = settings(
    max_examples=WIRE_EXAMPLES,
    database=None,
    deadline=None,
    # One server per test serves every example; each example resets its state.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DRIFT = settings(WIRE, max_examples=DRIFT_EXAMPLES)



def _sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


# -- strategies ----------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)


@st.composite
def _mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with a few fields dropped, replaced by any JSON, or mutated recursively."""
    if isinstance(base, dict) and base:
        out = dict(base)
        for key in draw(st.sets(st.sampled_from(sorted(base)), max_size=3)):
            action = draw(st.sampled_from(["mutate", "drop", "replace"]))
            if action == "drop":
                del out[key]
            else:
                out[key] = draw(_mutated(base[key]) if action == "mutate" else JSON)
        if draw(st.booleans()):
            out[draw(st.text(max_size=8))] = draw(JSON)
        return out
    if isinstance(base, list) and base:
        index = draw(st.integers(0, len(base) - 1))
        items = list(base)
        items[index] = draw(_mutated(items[index]))
        return draw(st.permutations(items))
    return draw(st.one_of(st.just(base), SCALARS, JSON))


SODA_PAGE = _sample("soda_list_page.json")
SODA_RUNNERS = SODA_PAGE["content"]
KUBIYA_RUNNERS = _sample("kubiya_list.json")
KUBIYA_HEALTHS = [_sample("kubiya_health.json"), _sample("kubiya_health_degraded.json")]
ERROR_BODIES = [
    _sample(name)
    for name in (
        "soda_error_not_found.json",
        "soda_error_in_use.json",
        "kubiya_error_code_error.json",
        "kubiya_error_detail.json",
        "kubiya_error_message.json",
        "kubiya_error_nested.json",
    )
]


def _near(samples: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(samples).flatmap(_mutated)


def _any_or_near(samples: list[Any]) -> st.SearchStrategy[Any]:
    return JSON | _near(samples)


# -- Soda --------------------------------------------------------------------------


def _check_runner(result: Runner, vendor: str, data: Any) -> None:
    assert isinstance(result, Runner)
    assert result.provider == vendor
    assert isinstance(result.id, str)
    assert result.id
    assert isinstance(result.name, str)
    assert result.name
    assert isinstance(result.kind, RunnerKind)
    assert isinstance(result.status, RunnerStatus)
    assert result.description is None or isinstance(result.description, str)
    assert result.last_seen is None or result.last_seen.tzinfo is not None
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.versions.items())
    assert result.raw is data


@PURE
@given(_any_or_near(SODA_RUNNERS))
def test_soda_runner_from_wire_maps_or_raises(data: Any) -> None:
    """Soda's runner mapping takes any JSON: a Runner or ResponseFormatError."""
    try:
        result = soda.runner_from_wire(data, "acct")
    except errors.ResponseFormatError:
        return  # any other exception, runnerhub's own included, fails the property
    _check_runner(result, "soda", data)


# -- Kubiya ------------------------------------------------------------------------


@PURE
@given(_any_or_near(KUBIYA_RUNNERS))
def test_kubiya_runner_from_wire_maps_or_raises(data: Any) -> None:
    """Kubiya's runner mapping takes any JSON: a Runner or ResponseFormatError."""
    try:
        result = kubiya.runner_from_wire(data, "acct")
    except errors.ResponseFormatError:
        return  # any other exception, runnerhub's own included, fails the property
    _check_runner(result, "kubiya", data)


@PURE
@given(_any_or_near(KUBIYA_HEALTHS))
def test_kubiya_health_from_wire_maps_or_raises(data: Any) -> None:
    """Kubiya's health mapping takes any JSON: a RunnerHealth or ResponseFormatError."""
    try:
        result = kubiya.health_from_wire(data)
    except errors.ResponseFormatError:
        return  # any other exception, runnerhub's own included, fails the property
    assert isinstance(result, RunnerHealth)
    assert isinstance(result.status, RunnerStatus)
    assert all(isinstance(check, RunnerCheck) and check.name for check in result.checks)
    assert result.checked_at is None or result.checked_at.tzinfo is not None


CHECKS = st.lists(
    st.builds(RunnerCheck, name=st.text(min_size=1), status=st.sampled_from(RunnerStatus)),
    max_size=3,
).map(tuple)


@PURE
@given(
    JSON | st.sampled_from(["true", "false", " TRUE ", True, False]),
    JSON | st.sampled_from(["ok", "Healthy", "degraded", "non-responsive", ""]),
    CHECKS,
)
def test_kubiya_overall_status_is_total(
    health: Any, status: Any, checks: tuple[RunnerCheck, ...]
) -> None:
    """overall_status maps any health/status pair to a RunnerStatus; "false" is always down."""
    result = kubiya.overall_status(health, status, checks)
    assert isinstance(result, RunnerStatus)
    if isinstance(health, (str, bool)) and str(health).strip().lower() == "false":
        assert result is RunnerStatus.OFFLINE


# -- timestamps ----------------------------------------------------------------------

ISO_TEXT = st.datetimes(timezones=st.none() | st.timezones() | st.just(UTC)).map(datetime.isoformat)


@PURE
@given(JSON | ISO_TEXT | ISO_TEXT.flatmap(lambda t: st.just(t[: len(t) // 2] + "Z")))
def test_parse_timestamp_is_total(value: Any) -> None:
    """parse_timestamp gives an aware datetime or None for any JSON value."""
    result = parse_timestamp(value)
    assert result is None or (isinstance(result, datetime) and result.tzinfo is not None)


# -- error bodies and responses -----------------------------------------------------

BODIES = (
    JSON.map(lambda value: json.dumps(value).encode())
    | _near(ERROR_BODIES).map(lambda value: json.dumps(value).encode())
    | st.binary(max_size=64)
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/html", "text/plain", ""]
) | st.text(max_size=20)


@PURE
@given(BODIES, CONTENT_TYPES)
def test_parse_error_body_is_total(body: bytes, content_type: str) -> None:
    """Each vendor's parse_error reads (code, message) as strings or None from any bytes."""
    for parse in (soda.parse_error, kubiya.parse_error):
        info = parse(400, {"Content-Type": content_type}, body)
        assert info.code is None or isinstance(info.code, str)
        assert info.message is None or isinstance(info.message, str)


DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
FULL_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def imf_fixdate(when: datetime) -> str:
    """RFC 9110 IMF-fixdate: ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    return (
        f"{DAYS[when.weekday()]}, {when.day:02d} {MONTHS[when.month - 1]} {when.year} "
        f"{when:%H:%M:%S} GMT"
    )


def rfc850_date(when: datetime) -> str:
    """The obsolete RFC 850 form: ``Sunday, 06-Nov-94 08:49:37 GMT``."""
    return (
        f"{FULL_DAYS[when.weekday()]}, {when.day:02d}-{MONTHS[when.month - 1]}-"
        f"{when.year % 100:02d} {when:%H:%M:%S} GMT"
    )


def asctime_date(when: datetime) -> str:
    """The obsolete asctime form: ``Sun Nov  6 08:49:37 1994``."""
    return (
        f"{DAYS[when.weekday()]} {MONTHS[when.month - 1]} {when.day:>2} {when:%H:%M:%S} {when.year}"
    )


DATE_FORMS: tuple[Callable[[datetime], str], ...] = (imf_fixdate, rfc850_date, asctime_date)
# RFC 850 years have two digits: keep them where every reading agrees (1970..2068).
HINT_DATES = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2068, 12, 30)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)
NEAR_DATES = st.integers(-3 * 86_400, 3 * 86_400).map(lambda s: NOW + timedelta(seconds=s))


def _expected_hint(seconds: float) -> float:
    # Any finite wait is kept, however long (issue 10, item 4): a call that cannot
    # wait that long raises with it instead of retrying early.
    return max(0.0, seconds)


@PURE
@given(st.integers(0, 10**7))
def test_retry_after_delay_seconds(seconds: int) -> None:
    """Retry-After delay-seconds reads exactly, beyond a day too."""
    assert parse_retry_after(str(seconds)) == _expected_hint(float(seconds))


@PURE
@given(HINT_DATES | NEAR_DATES, st.sampled_from(DATE_FORMS))
def test_retry_after_http_dates(when: datetime, form: Callable[[datetime], str]) -> None:
    """Retry-After as an HTTP-date in all three RFC forms gives the seconds until it."""
    hint = parse_retry_after(form(when), now=NOW)
    assert hint == _expected_hint((when - NOW).total_seconds())


RETRY_AFTER_NOISE = (
    st.text(max_size=40)
    | st.from_regex(r"\A[-+ ]?[0-9.eE_ ]{1,12}\Z")
    | st.sampled_from(["nan", "inf", "-1", "1e999", "0x10", "1,2", "Sun, 99 Foo 2025"])
)


@PURE
@given(RETRY_AFTER_NOISE)
def test_retry_after_anything_is_none_or_a_bounded_delay(value: str) -> None:
    """Any Retry-After text is None or a finite delay >= 0; it never raises."""
    hint = parse_retry_after(value, now=NOW)
    assert hint is None or (math.isfinite(hint) and hint >= 0.0)


HEADER_VALUES = RETRY_AFTER_NOISE | st.integers(-(10**12), 10**12).map(str)
HEADER_NAMES = st.sampled_from(
    [
        "Retry-After",
        "retry-after",
        "X-Soda-Trace-Id",
        "X-RateLimit-Remaining",
        "x-ratelimit-remaining",
        "X-RateLimit-Reset",
        "X-RateLimit-Limit",
        "X-RateLimit-Burst-Remaining",
        "Content-Type",
    ]
) | st.text(min_size=1, max_size=12)
HEADERS = st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=6).map(
    lambda pairs: CIMultiDictProxy(CIMultiDict(pairs))
)


@PURE
@given(HEADERS, st.integers(0, 2_000_000_000))
def test_rate_limit_reset_is_none_or_a_bounded_pause(
    headers: CIMultiDictProxy[str], now: int
) -> None:
    """X-RateLimit-* of any value give None or a finite pause >= 0."""
    pause = parse_rate_limit_reset(headers, now=float(now))
    assert pause is None or (math.isfinite(pause) and pause >= 0.0)


@PURE
@given(st.integers(0, 200_000), st.booleans(), st.integers(1_700_000_000, 1_800_000_000))
def test_rate_limit_reset_legal_forms(seconds: int, as_unix_time: bool, now: int) -> None:
    """A spent window pauses for the reset delay, given as seconds or as a Unix time."""
    reset = now + seconds if as_unix_time else seconds
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    assert parse_rate_limit_reset(headers, now=float(now)) == _expected_hint(float(seconds))
    headers["X-RateLimit-Remaining"] = "1"
    assert parse_rate_limit_reset(headers, now=float(now)) is None


STATUS_CLASSES: Mapping[int, type[errors.APIError]] = {
    400: errors.BadRequestError,
    401: errors.AuthenticationError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    429: errors.RateLimitError,
}


@PURE
@given(st.integers(100, 599), HEADERS, BODIES, CONTENT_TYPES)
def test_error_from_response_is_total(
    status: int, headers: CIMultiDictProxy[str], body: bytes, content_type: str
) -> None:
    """Any status, headers and body give the APIError subclass of the status, with context."""
    merged = CIMultiDict(headers)
    merged["Content-Type"] = content_type
    response = Response(status, CIMultiDictProxy(merged), body)
    error = error_from_response(
        response,
        trace_headers=("X-Soda-Trace-Id",),
        provider="soda",
        account="acct",
        operation="get_runner",
    )
    expected = STATUS_CLASSES.get(status) or (
        errors.ServerError if status >= 500 else errors.APIError
    )
    assert type(error) is expected
    assert error.status == status
    assert error.message
    assert len(error.message) <= 1000
    assert (error.provider, error.account, error.operation) == ("soda", "acct", "get_runner")
    assert error.trace_id == (merged.get("X-Soda-Trace-Id") or None)  # an empty id is none
    assert isinstance(str(error), str)
    if isinstance(error, errors.RateLimitError):
        hint = error.retry_after
        assert hint is None or (math.isfinite(hint) and hint >= 0.0)


# -- path segments -------------------------------------------------------------------


@PURE
@given(st.text(min_size=1))
@example("..")
@example(".")
@example("a/b?c#d%2F")
def test_encode_segment_round_trips_as_one_segment(value: str) -> None:
    """Any non-empty id encodes to one segment that decodes back to the id."""
    encoded = encode_segment(value)
    assert unquote(encoded) == value
    assert not set(encoded) & set("/?#")
    assert encoded not in (".", "..")
    path = Route("get_runner", "GET", "/api/v1/runners/{runner_id}").render({"runner_id": value})
    assert path == "/api/v1/runners/" + encoded


@pytest.mark.parametrize("value", ["\ud800", "runner-\udfff"])
def test_encode_segment_refuses_unencodable_ids(value: str) -> None:
    """An id that cannot be UTF-8 encoded is a UsageError, not a UnicodeEncodeError."""
    with pytest.raises(errors.UsageError):
        encode_segment(value)


# -- whole listings over a loopback server -----------------------------------------


@attrs.define
class Scripted:
    """A loopback server answering list routes with the bodies of the current example."""

    base_url: str = ""
    pages: list[bytes] = attrs.Factory(list)
    requests: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        """Serve page ``page`` (Soda) or the first body (Kubiya); 404 past the script."""
        self.requests += 1
        index = int(request.query.get("page", "0"))
        if index >= len(self.pages):
            return web.json_response({"code": "not_found", "message": "no page"}, status=404)
        return web.Response(body=self.pages[index], content_type="application/json")


@pytest_asyncio.fixture
async def scripted() -> AsyncIterator[Scripted]:
    """One scripted server for every example of a test."""
    server = Scripted()
    app = web.Application()
    app.router.add_get("/api/v1/runners", server.handle)
    app.router.add_get("/api/v3/runners", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.base_url = f"http://{host}:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


# Every example presents the same credential: the vendors' per-minute limits would
# make the 61st listing wait a minute, so these clients send without limits.
UNLIMITED: dict[str, Any] = {
    "max_retries": 0,
    "rate_limits": {"list_runners": None, "*": None},
}


def _dump(value: Any) -> bytes:
    return json.dumps(value).encode()


PAGE_BODIES = _near([SODA_PAGE]).map(_dump) | JSON.map(_dump) | st.binary(max_size=32)
KUBIYA_BODIES = (
    _near([KUBIYA_RUNNERS, {"runners": KUBIYA_RUNNERS}, {"data": KUBIYA_RUNNERS}]).map(_dump)
    | JSON.map(_dump)
    | st.binary(max_size=32)
)


async def _collect(provider: SodaProvider | KubiyaProvider) -> list[Runner] | errors.RunnerHubError:
    try:
        return [runner async for runner in provider.list_runners()]
    except errors.RunnerHubError as exc:
        return exc


def _check_listing(result: list[Runner] | errors.RunnerHubError, vendor: str) -> None:
    if isinstance(result, errors.RunnerHubError):
        assert (result.provider, result.operation) == (vendor, "list_runners")
        assert result.account == "acct"
        return
    assert all(isinstance(r, Runner) and r.provider == vendor for r in result)
    assert {r.account for r in result} <= {"acct"}


@WIRE
@given(pages=st.lists(PAGE_BODIES, min_size=1, max_size=3))
async def test_soda_listing_maps_any_page_or_raises(scripted: Scripted, pages: list[bytes]) -> None:
    """Soda listings over any page envelopes yield Runners or raise with context."""
    scripted.pages = pages
    async with SodaProvider(
        "key", "secret", base_url=scripted.base_url, account="acct", **UNLIMITED
    ) as provider:
        _check_listing(await _collect(provider), "soda")


@WIRE
@given(body=KUBIYA_BODIES)
async def test_kubiya_listing_maps_any_body_or_raises(scripted: Scripted, body: bytes) -> None:
    """Kubiya listings over any body yield Runners or raise with context."""
    scripted.pages = [body]
    async with KubiyaProvider(
        "key", base_url=scripted.base_url, account="acct", **UNLIMITED
    ) as provider:
        _check_listing(await _collect(provider), "kubiya")


# -- pagination drift ------------------------------------------------------------------

PAGE = 10


@attrs.frozen
class Change:
    """Insert a new runner at, or delete the runner at, ``position`` after ``step`` yields."""

    step: int
    insert: bool
    position: int


def _apply(org: SodaOrg, change: Change) -> str:
    """Apply ``change``; return the inserted or deleted id."""
    if change.insert:
        items = list(org.runners.items())
        new = org.add_runner()
        at = change.position % (len(items) + 1)
        org.runners.clear()
        org.runners.update([*items[:at], (new["id"], new), *items[at:]])
        return str(new["id"])
    victim = list(org.runners)[change.position % len(org.runners)]
    org.remove_runner(victim)
    return victim


@attrs.define
class Drift:
    """What one drifting listing saw."""

    yielded: list[str]
    at_start: set[str]
    ever: set[str]
    deleted: set[str]


@pytest_asyncio.fixture
async def drift_sandbox() -> AsyncIterator[Sandbox]:
    """A served sandbox whose only org is replaced by every example."""
    sandbox = Sandbox(seed=9, enforce_limits=False)
    async with sandbox.serve():
        yield sandbox


def _soda(sandbox: Sandbox) -> SodaService:
    service = sandbox.service("soda")
    assert isinstance(service, SodaService)
    return service


async def _drift(sandbox: Sandbox, runners: int, changes: list[Change]) -> Drift:
    _soda(sandbox).orgs.clear()
    org = sandbox.add_org("soda", "drift-eu", runners=runners)
    at_start = set(org.runners)
    ever, deleted = set(at_start), set[str]()
    plan: dict[int, list[Change]] = {}
    for change in changes:
        plan.setdefault(change.step, []).append(change)
    yielded: list[str] = []
    assert sandbox.base_url is not None
    async with SodaProvider(
        org.api_key_id, org.api_key_secret, base_url=sandbox.base_url, **UNLIMITED
    ) as provider:
        step = 0
        async for runner in provider.list_runners(page_size=PAGE):
            yielded.append(runner.id)
            step += 1
            for change in plan.get(step, ()):
                if not change.insert and len(org.runners) <= 1:
                    continue
                touched = _apply(org, change)
                (ever if change.insert else deleted).add(touched)
    return Drift(yielded, at_start, ever, deleted)


CHANGES = st.lists(
    st.builds(Change, step=st.integers(1, 60), insert=st.booleans(), position=st.integers(0, 99)),
    max_size=12,
)


@DRIFT
@given(
    runners=st.integers(1, 45),
    changes=CHANGES.filter(lambda cs: sum(c.insert for c in cs) <= PAGE),
)
async def test_drift_never_yields_a_runner_twice(
    drift_sandbox: Sandbox, runners: int, changes: list[Change]
) -> None:
    """With up to a page of inserts and any deletes between pages, no runner repeats."""
    seen = await _drift(drift_sandbox, runners, changes)
    assert len(seen.yielded) == len(set(seen.yielded))
    assert set(seen.yielded) <= seen.ever


@DRIFT
@given(
    runners=st.integers(1, 45),
    changes=st.lists(
        st.builds(
            Change, step=st.integers(1, 60), insert=st.just(True), position=st.integers(0, 99)
        ),
        max_size=PAGE,
    ),
)
async def test_drift_inserts_alone_miss_nothing(
    drift_sandbox: Sandbox, runners: int, changes: list[Change]
) -> None:
    """When runners are only added (up to a page), every runner present at the start is yielded."""
    seen = await _drift(drift_sandbox, runners, changes)
    assert seen.at_start <= set(seen.yielded)
    assert len(seen.yielded) == len(set(seen.yielded))


async def test_drift_deletion_behind_the_cursor_misses_a_runner(drift_sandbox: Sandbox) -> None:
    """Documented miss: deleting an already-read runner shifts an unread one onto a read page."""
    seen = await _drift(drift_sandbox, 30, [Change(step=PAGE, insert=False, position=0)])
    missed = seen.at_start - seen.deleted - set(seen.yielded)
    # The runner that was first on page 1 moved to the end of page 0 and was never read.
    assert len(missed) == 1
    assert len(seen.yielded) == 30 - 1


async def test_drift_more_than_a_page_of_inserts_yields_no_duplicate(
    drift_sandbox: Sandbox,
) -> None:
    """Inserting more than a page ahead of the cursor still yields each runner once."""
    changes = [Change(step=PAGE, insert=True, position=0) for _ in range(PAGE + 1)]
    seen = await _drift(drift_sandbox, 30, changes)
    assert len(seen.yielded) == len(set(seen.yielded))


async def test_a_page_repeating_an_id_yields_it_once(scripted: Scripted) -> None:
    """A vendor page that lists one id twice yields that runner once."""
    runner = {"id": "r-1", "name": "one"}
    page = {**SODA_PAGE, "content": [runner, runner], "totalElements": 2}
    scripted.pages = [_dump(page)]
    async with SodaProvider("key", "secret", base_url=scripted.base_url, **UNLIMITED) as provider:
        ids = [r.id async for r in provider.list_runners()]
    assert ids == ["r-1"]


async def test_a_page_with_the_wrong_number_is_refused(scripted: Scripted) -> None:
    """A server that answers page 0 to every page request is a ResponseFormatError."""
    content = [{"id": f"r-{n}"} for n in range(10)]
    first = {
        "content": content,
        "first": True,
        "last": False,
        "number": 0,
        "size": 10,
        "totalElements": 30,
        "totalPages": 3,
    }
    scripted.pages = [_dump(first)] * 3
    async with SodaProvider("key", "secret", base_url=scripted.base_url, **UNLIMITED) as provider:
        with pytest.raises(errors.ResponseFormatError):
            _ = [r async for r in provider.list_runners(page_size=10)]


async def test_consistent_listing_catches_churn_that_keeps_the_count(
    drift_sandbox: Sandbox,
) -> None:
    """consistent=True returns exactly the runners that exist, or raises; never a mixed list."""
    _soda(drift_sandbox).orgs.clear()
    org = drift_sandbox.add_org("soda", "churn-eu", runners=30)
    responses = 0

    async def churn_after_the_first_page(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        nonlocal responses
        responses += 1
        if responses == 1:  # between page 0 and page 1 of the first pass
            org.remove_runner(next(iter(org.runners)))
            org.add_runner()

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(churn_after_the_first_page)
    assert drift_sandbox.base_url is not None
    async with (
        aiohttp.ClientSession(trace_configs=[trace]) as session,
        SodaProvider(
            org.api_key_id,
            org.api_key_secret,
            base_url=drift_sandbox.base_url,
            session=session,
            **UNLIMITED,
        ) as provider,
    ):
        try:
            ids = [r.id async for r in provider.list_runners(page_size=PAGE, consistent=True)]
        except errors.RunnerHubError:
            return  # refusing an inconsistent listing is a correct answer
    assert sorted(ids) == sorted(org.runners)
