"""GitHub Actions self-hosted runners (REST API, version 2022-11-28).

Contract: GitHub's REST description for ``…/actions/runners`` at the
organisation, repository and enterprise scopes, its pagination, rate-limit
and troubleshooting pages (summarised in the project's GitHub runner notes).

Where GitHub leaves things open (see docs/vendors.md):
- Budget: the primary budget is learned from ``x-ratelimit-*`` on every
  response; secondary limits are declared as client-side buckets sized so that
  the documented ceilings hold (see :data:`DEFAULT_LIMITS`).
- A 403 or 429 is a rate limit when it carries ``retry-after``,
  ``x-ratelimit-remaining: 0`` or a "rate limit" message; any other 403 is a
  permission error and is never retried.
- Runner ids are sent as given (one escaped segment): GitHub answers 404 for
  one that is not a number.
"""

from __future__ import annotations

import functools
import math
import os
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final, Unpack
from urllib.parse import urlencode

import attrs
import cattrs
from yarl import URL

from .. import errors
from .._convert import as_str, make_wire_converter, parse_timestamp, structure
from .._http import (
    ClientOptions,
    HTTPCore,
    Response,
    Route,
    VendorSpec,
    decode_json,
    encode_segment,
)
from .._sansio import ErrorInfo
from ..limits import Budget, RateLimit
from ..models import (
    CreatedRunner,
    RegistrationToken,
    Runner,
    RunnerKind,
    RunnerStatus,
    Secret,
    build_runner,
)
from ..provider import Capability, CredentialField, VendorOption
from ..retry import parse_retry_after
from ._base import ProviderBase

__all__ = [
    "API_VERSION",
    "DEFAULT_BASE_URL",
    "DEFAULT_LIMITS",
    "GitHubProvider",
    "api_path",
    "budget_from_headers",
    "error_info",
    "next_link",
    "parse_error",
    "parse_link_header",
    "read_budget",
    "runner_from_wire",
    "scope_prefix",
]

DEFAULT_BASE_URL: Final = "https://api.github.com"
API_VERSION: Final = "2022-11-28"
PER_PAGE: Final = 100  # GitHub's maximum page size for runner listings

MUTATIONS: Final = "mutations"
DEFAULT_LIMITS: Final[Mapping[str, tuple[RateLimit, ...]]] = {
    # Secondary limit: 900 points a minute, a GET costing 1 and a mutation 5.
    # A slot is one request whatever it costs, so "*" admits 600 a minute and
    # mutations (which also draw from "*") are held to 60 a minute below: the
    # worst minute then costs 540 * 1 + 60 * 5 = 840 points, under 900.
    "*": (RateLimit(600, 60),),
    # Content creation: at most 80 a minute. GitHub also asks for mutations
    # one at a time, at least a second apart: the 1-per-second window holds a
    # slot from send until a second after the answer (so one in flight), and
    # its burst=1 pacer (aiolimiter) spaces the sends of queued callers.
    MUTATIONS: (RateLimit(80, 60), RateLimit(1, 1.0, burst=1)),
}

# Waits beyond a day are nonsense or hostile (GitHub's primary window is an hour).
_MAX_WAIT: Final = 86_400.0
# GitHub's advice for a rate limit with neither retry-after nor remaining 0: at least a minute.
_DEFAULT_RATE_LIMIT_WAIT: Final = 60.0
_RATE_LIMIT_STATUSES: Final = frozenset({403, 429})
# The budget the runner endpoints count against; another resource's budget is not ours.
_CORE_RESOURCE: Final = "core"

_STATUSES: Final[Mapping[str, RunnerStatus]] = {
    "online": RunnerStatus.ONLINE,
    "offline": RunnerStatus.OFFLINE,
}
_SELF_HOSTED: Final = RunnerKind.SELF_HOSTED
_NO_STATUS: Final = RunnerStatus.UNKNOWN
_MAX_LABELS: Final = 100


# -- wire ------------------------------------------------------------------


@functools.cache
def _wire() -> cattrs.Converter:
    # Built on first use rather than at import: a converter costs ~2 ms to set up.
    return make_wire_converter()


@attrs.frozen
class _RunnerPage:
    total_count: int
    runners: list[Any]


@attrs.frozen
class _LabelList:
    total_count: int
    labels: list[Any]


@attrs.frozen
class _Token:
    token: str
    expires_at: str | None = None


@attrs.frozen
class _JitConfig:
    runner: Any
    encoded_jit_config: str


def runner_from_wire(data: Any, account: str) -> Runner:
    """Map a GitHub ``runner`` object to a :class:`Runner`.

    ``id`` (an integer) becomes the string id; ``status`` ``online``/``offline``
    map to ONLINE/OFFLINE, anything else to UNKNOWN; ``labels[].name`` become
    :attr:`Runner.labels`. ``os``, ``busy``, ``runner_group_id``, ``ephemeral``
    and unknown fields stay in ``raw``.

    Raises:
        ResponseFormatError: when ``data`` is not an object with an integer
            ``id``, or a label has no string ``name``.
    """
    if not isinstance(data, dict):
        raise errors.ResponseFormatError("runner: expected a JSON object")
    runner_id = data.get("id")
    if not isinstance(runner_id, int) or isinstance(runner_id, bool) or runner_id < 0:
        raise errors.ResponseFormatError("runner: missing or non-integer id")
    key = str(runner_id)
    name = data.get("name")
    status = data.get("status")
    # build_runner is Runner(...) with every field in order: provider, account, id,
    # name, kind, status, description, last_seen, versions, raw, labels.
    return build_runner(
        "github",
        account,
        key,
        name if isinstance(name, str) and name else key,
        _SELF_HOSTED,
        _STATUSES.get(status, _NO_STATUS) if isinstance(status, str) else _NO_STATUS,
        None,
        None,
        {},
        data,
        _label_names(data.get("labels"), "runner"),
    )


def _label_names(items: Any, what: str) -> tuple[str, ...]:
    # A missing list is no labels; a label without a string name is a broken payload.
    if items is None:
        return ()
    if not isinstance(items, list):
        raise errors.ResponseFormatError(f"{what}: labels is not an array")
    names = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise errors.ResponseFormatError(f"{what}: a label without a string name")
        names.append(name)
    return tuple(names)


# -- pagination --------------------------------------------------------------

# One link-value of RFC 8288: "<URI>" followed by its ";"-separated parameters.
_LINK_VALUE: Final = re.compile(r"<(?P<target>[^>]*)>(?P<params>[^<]*)")


def parse_link_header(header: str | None) -> dict[str, str]:
    """The targets of a ``Link`` header by relation (``{"next": url, ...}``).

    Reads ``<url>; rel="next", <url>; rel="last"`` as GitHub sends it; a
    ``rel`` listing several relations names the URL for each; the first URL
    given for a relation wins. Anything unreadable is skipped.
    """
    links: dict[str, str] = {}
    if not header:
        return links
    for match in _LINK_VALUE.finditer(header):
        target = match["target"].strip()
        for param in match["params"].split(";"):
            key, _, value = param.strip(" \t,").partition("=")
            if key.strip().lower() != "rel":
                continue
            for rel in value.strip().strip('"').lower().split():
                links.setdefault(rel, target)
    return links


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, or None on the last page."""
    return parse_link_header(header).get("next") or None


def api_path(link: str, base_url: str) -> str:
    """``link`` as a path and query under ``base_url``, for the HTTP core to send.

    GitHub's page links may name another path than the one requested, so they
    are followed as given, but only to the same origin (scheme, host, port)
    and under the base URL's path (``/api/v3`` on GitHub Enterprise Server):
    the token is never sent anywhere else.

    Raises:
        ValueError: for a link to another origin, with credentials, or
            outside the base path.
    """
    base = URL(base_url)
    try:
        url = base.join(URL(link))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"unreadable link: {exc}") from None
    if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
        raise ValueError(f"link to another origin ({url.scheme}://{url.host}:{url.port})")
    if url.user is not None or url.password is not None:
        raise ValueError("link with credentials")
    prefix = base.raw_path.rstrip("/")
    path = url.raw_path
    if prefix and path != prefix and not path.startswith(prefix + "/"):
        raise ValueError(f"link outside {prefix}")
    query = url.raw_query_string
    return path[len(prefix) :] + (f"?{query}" if query else "")


# -- limits and errors ---------------------------------------------------------


def _seconds_until(epoch: str | None, now: float) -> float | None:
    # x-ratelimit-reset: when the window resets, in UTC epoch seconds.
    if epoch is None:
        return None
    try:
        seconds = float(epoch) - now
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds > _MAX_WAIT:
        return None
    return max(0.0, seconds)


def budget_from_headers(headers: Mapping[str, str], *, now: float) -> Budget | None:
    """GitHub's primary budget from ``x-ratelimit-remaining``, ``-reset`` and ``-limit``.

    ``headers`` is case-insensitive (a response's); ``now`` is the current
    Unix time. Returns None when the headers are absent (GitHub Enterprise
    Server without limits), malformed, or about another resource than
    ``core`` (``x-ratelimit-resource``). ``x-ratelimit-limit`` (what the reset
    restores) is kept when it is a positive integer.
    """
    remaining = headers.get("x-ratelimit-remaining")
    if remaining is None:
        return None
    resource = headers.get("x-ratelimit-resource")
    if resource is not None and resource.strip().lower() != _CORE_RESOURCE:
        return None
    try:
        count = int(remaining.strip())
    except ValueError:
        return None
    reset_after = _seconds_until(headers.get("x-ratelimit-reset"), now)
    if count < 0 or reset_after is None:
        return None
    return Budget(remaining=count, reset_after=reset_after, limit=_window_limit(headers))


def _window_limit(headers: Mapping[str, str]) -> int | None:
    try:
        limit = int((headers.get("x-ratelimit-limit") or "").strip())
    except ValueError:
        return None
    return limit if limit > 0 else None


def read_budget(headers: Mapping[str, str]) -> Budget | None:
    """:func:`budget_from_headers` at the current time (``VendorSpec.read_budget``)."""
    return budget_from_headers(headers, now=time.time())


def error_info(status: int, headers: Mapping[str, str], body: bytes, *, now: float) -> ErrorInfo:
    """What a GitHub error response says, in GitHub's documented order for rate limits.

    A 403 or 429 is rate-limited when it has ``retry-after`` (wait that long),
    else ``x-ratelimit-remaining: 0`` (wait until ``x-ratelimit-reset``), else
    a message mentioning a rate limit, or is a 429 (wait 60 s). Any other 403
    is a permission error. ``message`` is the body's ``message``; ``code`` the
    first ``errors[].code`` of a validation error. ``now`` is the Unix time.
    """
    code, message = _error_body(body)
    if status not in _RATE_LIMIT_STATUSES:
        return ErrorInfo(code=code, message=message)
    retry_after = parse_retry_after(headers.get("retry-after"))
    if retry_after is None and (headers.get("x-ratelimit-remaining") or "").strip() == "0":
        retry_after = _seconds_until(headers.get("x-ratelimit-reset"), now)
        if retry_after is None:
            retry_after = _DEFAULT_RATE_LIMIT_WAIT
    if retry_after is None and (status == 429 or "rate limit" in (message or "").lower()):
        retry_after = _DEFAULT_RATE_LIMIT_WAIT
    if retry_after is None:
        return ErrorInfo(code=code, message=message)
    return ErrorInfo(code=code, message=message, rate_limited=True, retry_after=retry_after)


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
    """:func:`error_info` at the current time (``VendorSpec.parse_error``)."""
    return error_info(status, headers, body, now=time.time())


def _error_body(body: bytes) -> tuple[str | None, str | None]:
    # basic-error {message, documentation_url, ...}; validation errors add errors[].
    try:
        data = decode_json(body) if body.strip() else None
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    message = as_str(data.get("message"))
    code = None
    details = data.get("errors")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        code = as_str(details[0].get("code"))
    return code, message[:500] if message else None


GITHUB: Final = VendorSpec(
    name="github",
    limits=DEFAULT_LIMITS,
    trace_headers=("x-github-request-id",),
    parse_error=parse_error,
    read_budget=read_budget,
)


# -- scope and routes ----------------------------------------------------------


def scope_prefix(*, org: str | None, repo: str | None, enterprise: str | None) -> str:
    """The escaped path prefix of the one scope given, e.g. ``/orgs/acme/actions/runners``.

    ``repo`` is ``"owner/name"`` and becomes two segments.

    Raises:
        UsageError: unless exactly one scope is given, well-formed.
    """
    given = [
        (kind, value)
        for kind, value in (("org", org), ("repo", repo), ("enterprise", enterprise))
        if value is not None
    ]
    if len(given) != 1:
        raise errors.UsageError("GitHubProvider needs exactly one of org=, repo= or enterprise=")
    kind, value = given[0]
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise errors.UsageError(f"{kind} must be a non-empty string without surrounding spaces")
    if kind == "repo":
        owner, _, name = value.partition("/")
        if not owner or not name or "/" in name:
            raise errors.UsageError(f"repo must be 'owner/name', got {value!r}")
        segments: tuple[str, ...] = ("repos", owner, name)
    else:
        if "/" in value:
            raise errors.UsageError(f"{kind} must be one name, got {value!r}")
        segments = ("orgs" if kind == "org" else "enterprises", value)
    escaped = [segments[0], *(_segment(kind, part) for part in segments[1:])]
    return "/" + "/".join(escaped) + "/actions/runners"


def _segment(kind: str, value: str) -> str:
    try:
        return encode_segment(value)
    except errors.UsageError:
        raise errors.UsageError(f"{kind} is not a valid name: {value!r}") from None


@attrs.frozen
class _Routes:
    list: Route
    get: Route
    delete: Route
    create: Route
    registration_token: Route
    remove_token: Route
    list_labels: Route
    add_labels: Route
    set_labels: Route
    remove_label: Route


def _route(operation: str, method: str, path: str) -> Route:
    # Every non-GET draws from the mutations bucket as well (brief §6 Route.buckets).
    buckets = () if method == "GET" else (MUTATIONS,)
    return Route(operation, method, path, buckets=buckets)


@functools.cache
def _routes(prefix: str) -> _Routes:
    # The prefix is escaped already (no braces), so it is safe inside a template.
    runner = prefix + "/{runner_id}"
    return _Routes(
        list=_route("list_runners", "GET", prefix),
        get=_route("get_runner", "GET", runner),
        delete=_route("delete_runner", "DELETE", runner),
        create=_route("create_runner", "POST", prefix + "/generate-jitconfig"),
        registration_token=_route("registration_token", "POST", prefix + "/registration-token"),
        remove_token=_route("remove_token", "POST", prefix + "/remove-token"),
        list_labels=_route("list_labels", "GET", runner + "/labels"),
        add_labels=_route("add_labels", "POST", runner + "/labels"),
        set_labels=_route("set_labels", "PUT", runner + "/labels"),
        remove_label=_route("remove_label", "DELETE", runner + "/labels/{label}"),
    )


def _check_labels(labels: Iterable[str], *, least: int) -> list[str]:
    if isinstance(labels, str):
        raise errors.UsageError("labels must be a sequence of strings, not one string")
    names = list(labels)
    if not all(isinstance(name, str) and name.strip() for name in names):
        raise errors.UsageError("every label must be a non-empty string")
    if not least <= len(names) <= _MAX_LABELS:
        raise errors.UsageError(f"give {least}..{_MAX_LABELS} labels, got {len(names)}")
    return names


# -- provider ------------------------------------------------------------------


class GitHubProvider(ProviderBase):
    """GitHub Actions self-hosted runners of one organisation, repository or enterprise.

    Args:
        token: A GitHub token (classic or fine-grained PAT, app installation
            token) allowed to administer the scope's runners; sent as
            ``Authorization: Bearer <token>``.
        org: An organisation login: runners at ``/orgs/{org}``.
        repo: A repository as ``"owner/name"``: runners at ``/repos/{owner}/{name}``.
        enterprise: An enterprise slug (GitHub Enterprise Cloud):
            runners at ``/enterprises/{enterprise}``. Give exactly one scope.
        base_url: API root (default https://api.github.com); GitHub
            Enterprise Server is ``https://HOST/api/v3``.
        account: Label used in models and errors (default ``"github-<scope>"``).
        session, rate_limits, timeout, max_retries, limiter, ...: The keywords
            every provider takes; see :class:`runnerhub.SodaProvider`.
            ``rate_limits`` keys are ``"*"``, ``"mutations"`` or an operation name.

    Raises:
        UsageError: for no scope or several, a malformed scope or token, or
            an insecure base URL.
    """

    provider: ClassVar[str] = "github"
    title: ClassVar[str] = "GitHub Actions"
    credentials: ClassVar[tuple[CredentialField, ...]] = (CredentialField("token", "GITHUB_TOKEN"),)
    options: ClassVar[tuple[VendorOption, ...]] = (
        VendorOption(
            "org", "organisation login (one scope of org, repo, enterprise)", "GITHUB_ORG"
        ),
        VendorOption("repo", "repository as owner/name", "GITHUB_REPOSITORY"),
        VendorOption(
            "enterprise", "enterprise slug (GitHub Enterprise Cloud)", "GITHUB_ENTERPRISE"
        ),
    )
    capabilities = frozenset(
        {
            Capability.LIST,
            Capability.GET,
            Capability.CREATE,
            Capability.DELETE,
            Capability.LABELS,
            Capability.REGISTRATION_TOKENS,
        }
    )
    default_limits: ClassVar[Mapping[str, tuple[RateLimit, ...]]] = DEFAULT_LIMITS

    def __init__(
        self,
        token: str,
        *,
        org: str | None = None,
        repo: str | None = None,
        enterprise: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        if not isinstance(token, str) or not token or any(c.isspace() for c in token):
            raise errors.UsageError("GitHubProvider needs a token without spaces")
        prefix = scope_prefix(org=org, repo=repo, enterprise=enterprise)
        self.scope: Final = next(v for v in (org, repo, enterprise) if v is not None)
        """The organisation, ``owner/name`` repository or enterprise this provider manages."""
        self._routes = _routes(prefix)
        self._http = HTTPCore(
            GITHUB,
            # Accept and the API version travel with the credential on every request.
            auth_headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            },
            credential_id=token,
            default_base_url=DEFAULT_BASE_URL,
            default_account=f"github-{self.scope}",
            options=options,
        )

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        org: str | None = None,
        repo: str | None = None,
        enterprise: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> GitHubProvider:
        """Build from ``GITHUB_TOKEN``, a scope and ``GITHUB_API_URL``.

        A scope given as a keyword wins; otherwise the first set of
        ``GITHUB_ENTERPRISE``, ``GITHUB_ORG``, ``GITHUB_REPOSITORY`` (last,
        because GitHub Actions sets it in every job). ``GITHUB_API_URL`` (set
        by Actions, GHES included) is the base URL unless ``base_url`` is given.

        Raises:
            UsageError: when the token or every scope is unset.
        """
        env = os.environ if environ is None else environ
        token = env.get("GITHUB_TOKEN")
        if not token:
            raise errors.UsageError("set GITHUB_TOKEN")
        if env.get("GITHUB_API_URL") and "base_url" not in options:
            options["base_url"] = env["GITHUB_API_URL"]
        if org is None and repo is None and enterprise is None:
            if env.get("GITHUB_ENTERPRISE"):
                enterprise = env["GITHUB_ENTERPRISE"]
            elif env.get("GITHUB_ORG"):
                org = env["GITHUB_ORG"]
            elif env.get("GITHUB_REPOSITORY"):
                repo = env["GITHUB_REPOSITORY"]
            else:
                raise errors.UsageError("set GITHUB_ORG, GITHUB_REPOSITORY or GITHUB_ENTERPRISE")
        return cls(token, org=org, repo=repo, enterprise=enterprise, **options)

    def _format(
        self, operation: str, exc: errors.ResponseFormatError
    ) -> errors.ResponseFormatError:
        return self._http.format_error(operation, exc.message)

    async def verify(self) -> None:
        """Check the token against this scope with the cheapest listing (one runner).

        Costs one request of the primary budget; unlike ``GET /rate_limit``
        (free) it proves the token may read this scope's runners.

        Raises:
            AuthenticationError: for a token GitHub refuses.
            NotFoundError, PermissionDeniedError: when the token cannot see the scope.
        """
        await self._http.request(self._routes.list, query={"per_page": 1})

    async def list_runners(self, *, name: str | None = None) -> AsyncIterator[Runner]:
        """Yield every runner, one page of 100 at a time as the caller consumes them.

        Pages are followed through ``Link: rel="next"`` as GitHub gives them,
        only on the same origin and base path. A runner that moves between
        pages while they are read is yielded once; one that moves back onto a
        page already read is missed by this listing.

        Args:
            name: Only the runner of that name (GitHub's ``name`` filter).

        Raises:
            ResponseFormatError: for a malformed page, or a next link that leaves
                the API or loops back to a page already read.
        """
        route = self._routes.list
        query: dict[str, str | int] = {"per_page": PER_PAGE}
        if name is not None:
            query["name"] = name
        response = await self._http.request(route, query=query)
        account = self.account
        seen: set[str] = set()
        # Paths (with queries) already requested, in the form api_path gives them.
        visited = {f"{route.path}?{urlencode(query)}"}
        while True:
            page = self._page(response)
            try:
                runners = [runner_from_wire(item, account) for item in page.runners]
            except errors.ResponseFormatError as exc:
                raise self._format(route.operation, exc) from None
            for runner in runners:
                if runner.id not in seen:
                    seen.add(runner.id)
                    yield runner
            link = next_link(response.headers.get("Link"))
            if link is None or not page.runners:
                return
            try:
                path = api_path(link, self.base_url)
            except ValueError as exc:
                raise self._http.format_error(route.operation, f"next page: {exc}") from None
            if path in visited:
                raise self._http.format_error(route.operation, "next page: loops back")
            visited.add(path)
            response = await self._http.request(attrs.evolve(route, path=path))

    def _page(self, response: Response) -> _RunnerPage:
        data = self._http.decode(self._routes.list, response)
        try:
            return structure(_wire(), data, _RunnerPage, "runner page")
        except errors.ResponseFormatError as exc:
            raise self._format("list_runners", exc) from None

    async def get_runner(self, runner_id: str) -> Runner:
        """Return one runner.

        Raises:
            NotFoundError: when there is no such runner, or the token cannot see it.
        """
        route = self._routes.get
        data = await self._http.request_json(route, {"runner_id": runner_id})
        try:
            return runner_from_wire(data, self.account)
        except errors.ResponseFormatError as exc:
            raise self._format(route.operation, exc) from None

    async def create_runner(
        self,
        name: str | None = None,
        *,
        labels: Sequence[str] = ("self-hosted",),
        runner_group_id: int = 1,
    ) -> CreatedRunner:
        """Create a just-in-time runner (``POST …/generate-jitconfig``).

        The result's ``jit_config`` starts exactly one runner
        (``./run.sh --jitconfig …``); it is a secret. Never retried once the
        request may have reached GitHub: a second try could answer 409.

        Args:
            name: The runner's name (required).
            labels: 1..100 labels (GitHub keeps the read-only ones it knows).
            runner_group_id: The runner group (1 is usually the default group).

        Raises:
            UsageError: for a missing name, bad labels or group id.
            APIError: 409 when the name is taken; 404 or 403 for an unusable group.
        """
        if not isinstance(name, str) or not name.strip():
            raise errors.UsageError("GitHub runners are created by name: create_runner(name)")
        if (
            not isinstance(runner_group_id, int)
            or isinstance(runner_group_id, bool)
            or runner_group_id < 1
        ):
            raise errors.UsageError(
                f"runner_group_id must be a positive integer, got {runner_group_id!r}"
            )
        body = {
            "name": name,
            "runner_group_id": runner_group_id,
            "labels": _check_labels(labels, least=1),
        }
        route = self._routes.create
        data = await self._http.request_json(route, json_body=body)
        try:
            created = structure(_wire(), data, _JitConfig, "jit config")
            runner = runner_from_wire(created.runner, self.account)
        except errors.ResponseFormatError as exc:
            raise self._format(route.operation, exc) from None
        return CreatedRunner(
            runner_id=runner.id,
            name=runner.name,
            jit_config=Secret(created.encoded_jit_config),
            raw=created.runner,
        )

    async def delete_runner(self, runner_id: str) -> None:
        """Remove a runner from GitHub ("force removal").

        Raises:
            NotFoundError: when there is no such runner.
            APIError: 422, e.g. while the runner is busy with a job (not retried).
        """
        await self._http.request(self._routes.delete, {"runner_id": runner_id})

    async def _token(self, route: Route) -> RegistrationToken:
        data = await self._http.request_json(route)
        try:
            token = structure(_wire(), data, _Token, "token")
        except errors.ResponseFormatError as exc:
            raise self._format(route.operation, exc) from None
        return RegistrationToken(Secret(token.token), parse_timestamp(token.expires_at))

    async def registration_token(self) -> RegistrationToken:
        """Mint a token for ``./config.sh --token`` (valid for one hour)."""
        return await self._token(self._routes.registration_token)

    async def remove_token(self) -> RegistrationToken:
        """Mint a token for ``./config.sh remove --token`` (valid for one hour)."""
        return await self._token(self._routes.remove_token)

    async def _labels(
        self, route: Route, params: Mapping[str, str], body: Any = None
    ) -> tuple[str, ...]:
        data = await self._http.request_json(route, params, json_body=body)
        try:
            envelope = structure(_wire(), data, _LabelList, "labels")
            return _label_names(envelope.labels, "labels")
        except errors.ResponseFormatError as exc:
            raise self._format(route.operation, exc) from None

    async def list_labels(self, runner_id: str) -> tuple[str, ...]:
        """Every label of the runner, read-only ones (``self-hosted``, OS, arch) included."""
        return await self._labels(self._routes.list_labels, {"runner_id": runner_id})

    async def add_labels(self, runner_id: str, labels: Sequence[str]) -> tuple[str, ...]:
        """Add 1..100 custom labels; return every label the runner has afterwards."""
        body = {"labels": _check_labels(labels, least=1)}
        return await self._labels(self._routes.add_labels, {"runner_id": runner_id}, body)

    async def set_labels(self, runner_id: str, labels: Sequence[str]) -> tuple[str, ...]:
        """Replace the custom labels with 0..100 others (none removes them all).

        Returns every label the runner has afterwards, read-only ones included.
        """
        body = {"labels": _check_labels(labels, least=0)}
        return await self._labels(self._routes.set_labels, {"runner_id": runner_id}, body)

    async def remove_label(self, runner_id: str, label: str) -> tuple[str, ...]:
        """Remove one custom label; return the labels that remain.

        Raises:
            NotFoundError: when the runner has no such custom label.
        """
        params = {"runner_id": runner_id, "label": label}
        return await self._labels(self._routes.remove_label, params)
