"""GitHub Actions self-hosted runners (REST 2022-11-28), as ``github-runners-notes.md`` states.

One route per operation serves all three scopes: ``/orgs/{org}``,
``/repos/{owner}/{repo}`` and ``/enterprises/{enterprise}``, plus the id forms
``/organizations/{id}`` and ``/repositories/{id}`` that GitHub's own ``Link``
headers use (notes §5), each followed by ``/actions/runners``.

Limits (notes §6) are kept per token by ``_github_limits``: a fixed-window
primary budget reported in ``x-ratelimit-*`` on every response, and sliding
secondary windows (points, content creation, concurrency) whose breach is a
403 with ``retry-after`` and a "secondary rate limit" message. Requests without
a valid token share one budget of ``unauthenticated_limit`` (per IP on GitHub;
every sandbox client is on loopback).

Where the notes leave a choice open (UNCONFIRMED or INFER there), the sandbox:

- answers 404 to a valid token naming a scope it cannot see, as for a missing one;
  a scope's ``read_token`` may read, and gets 403 on mutations;
- caps ``per_page`` at 100, treats a missing, non-numeric or < 1 ``per_page``
  or ``page`` as the default, and serves ``runners: []`` past the last page;
- filters ``name`` exactly, ignoring case (runner names are unique ignoring case);
- answers 409 to a JIT request naming an existing runner, 404 to an unknown
  runner group, and 422 to deleting a busy runner or removing a read-only label;
- leaves ``runner_group_id`` out of repository runners (they have no groups);
- redirects a former org or repo name with 301 for GET and 307 otherwise,
  to the same host, keeping the rest of the path and the query.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlencode

import attrs
from aiohttp import web
from multidict import CIMultiDict

from ._common import (
    EXCHANGE,
    Exchange,
    Handler,
    SandboxAccount,
    Settings,
    credential_id,
    utcnow,
)
from ._github_limits import GitHubBudgets, GitHubLimits
from ._github_state import GitHubOrg, Scope, expires_at

API_VERSIONS = frozenset({"2022-11-28", "2026-03-10"})
DOCS = "https://docs.github.com/rest"
RUNNER_DOCS = "https://docs.github.com/rest/actions/self-hosted-runners"
RATE_DOCS = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"

_SCOPE_PATH = (
    "/{kind:orgs|repos|enterprises|organizations|repositories}"
    "/{owner}{repo:(?:/[^/]+)?}/actions/runners"
)
# The budget key of requests without a valid token (credential tags are 12 hex digits).
_UNAUTHENTICATED = "unauthenticated"
_PER_PAGE_DEFAULT = 30
_PER_PAGE_MAX = 100
_MAX_LABELS = 100
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PERMISSION = {"org": "organization_self_hosted_runners", "repo": "administration"}
_SCOPE_WORDS = {"org": "an-organization", "repo": "a-repository", "enterprise": "an-enterprise"}
# Doc anchors per operation; "{scope}" becomes e.g. "an-organization".
_ANCHORS = {
    "list_runners": "list-self-hosted-runners-for-{scope}",
    "list_runner_applications": "list-runner-applications-for-{scope}",
    "generate_jitconfig": "create-configuration-for-a-just-in-time-runner-for-{scope}",
    "create_registration_token": "create-a-registration-token-for-{scope}",
    "create_remove_token": "create-a-remove-token-for-{scope}",
    "get_runner": "get-a-self-hosted-runner-for-{scope}",
    "delete_runner": "delete-a-self-hosted-runner-from-{scope}",
    "list_labels": "list-labels-for-a-self-hosted-runner-for-{scope}",
    "add_labels": "add-custom-labels-to-a-self-hosted-runner-for-{scope}",
    "set_labels": "set-custom-labels-for-a-self-hosted-runner-for-{scope}",
    "remove_all_labels": "remove-all-custom-labels-from-a-self-hosted-runner-for-{scope}",
    "remove_label": "remove-a-custom-label-from-a-self-hosted-runner-for-{scope}",
}
_APPLICATIONS = (
    ("osx", "x64"),
    ("osx", "arm64"),
    ("linux", "x64"),
    ("linux", "arm"),
    ("linux", "arm64"),
    ("win", "x64"),
    ("win", "arm64"),
)
_RUNNER_VERSION = "2.321.0"
_ORG_OPTIONS = frozenset(
    {"scope", "token", "labels", "runner_groups", "rate_limit", "former_names"}
)
# Path segments after ``/actions/runners``, by operation.
_TRAILING = {
    "list_runners": 0,
    "get_runner": 1,
    "delete_runner": 1,
    "list_runner_applications": 1,
    "generate_jitconfig": 1,
    "create_registration_token": 1,
    "create_remove_token": 1,
    "list_labels": 2,
    "add_labels": 2,
    "set_labels": 2,
    "remove_all_labels": 2,
    "remove_label": 3,
}


class _Answer(Exception):
    """Raised while serving a request to send ``response`` as it is."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


@attrs.frozen
class _Target:
    """The scope a request names, once resolved and authorized."""

    org: GitHubOrg
    # Path before the scope segments: "" at the root, "/api/v3" under GHES, ...
    mount: str
    # Path after "/actions/runners", e.g. "/42/labels".
    rest: str


_TOKEN = web.RequestKey("runnerhub_sandbox_github_token", str)


class GitHubService:
    """Routes, auth, limits and error bodies of GitHub's self-hosted runner API.

    Args:
        settings: Shared sandbox knobs (``time_scale``, ``enforce_limits``,
            ``retry_after`` style, the limiter).
        path_prefix: Serve under this path, e.g. ``"/api/v3"`` as GitHub
            Enterprise Server does; ``""`` serves at the root like api.github.com.
        primary_limit: Requests per hour per token (``x-ratelimit-limit``);
            ``None`` disables the primary budget and its headers, as GHES does
            by default. An org's ``rate_limit`` overrides it for its token.
        unauthenticated_limit: Requests per hour without a valid token.
        rate_limit_status: 403 (GitHub's usual answer) or 429 for an exhausted budget.
        concurrency: Requests in flight per token before a secondary-limit 403.
        points_per_minute: Secondary points per token per minute (GET 1, others 5).
        content_per_minute: Mutations per token per minute.
        content_per_hour: Mutations per token per hour.
        link_by_id: Write ``Link`` URLs with ``/organizations/{id}`` and
            ``/repositories/{id}`` paths as GitHub does; false keeps the
            requested path.
    """

    vendor = "github"

    def __init__(
        self,
        settings: Settings,
        *,
        path_prefix: str = "",
        primary_limit: int | None = 5000,
        unauthenticated_limit: int = 60,
        rate_limit_status: int = 403,
        concurrency: int = 100,
        points_per_minute: int = 900,
        content_per_minute: int = 80,
        content_per_hour: int = 500,
        link_by_id: bool = True,
        seed: int | None = None,
    ) -> None:
        if path_prefix and (not path_prefix.startswith("/") or path_prefix.endswith("/")):
            raise ValueError("path_prefix must start with '/' and not end with one")
        self.orgs: dict[str, GitHubOrg] = {}
        # At the root GitHub's paths share no prefix (/orgs, /repos, /enterprises).
        self.prefix = path_prefix + "/" if path_prefix else ""
        self._settings = settings
        self._path_prefix = path_prefix
        self._budgets = GitHubBudgets(
            GitHubLimits(
                primary_limit,
                unauthenticated_limit,
                rate_limit_status,
                concurrency,
                points_per_minute,
                content_per_minute,
                content_per_hour,
            ),
            settings,
        )
        self._link_by_id = link_by_id
        self._seed = settings.seed if seed is None else seed

    def __repr__(self) -> str:
        return f"GitHubService(orgs={list(self.orgs)}, prefix={self.prefix!r})"

    # -- the Service protocol: state ------------------------------------------------

    def add_org(self, name: str, runners: int = 0, **options: Any) -> GitHubOrg:
        """Add a runner scope with ``runners`` seeded runners.

        Args:
            name: The org or enterprise slug, or ``"owner/name"`` for a repository.
            runners: How many runners to seed (a fixed mix of OSes, architectures,
                online/offline/busy and ephemeral; see ``GitHubOrg.seeded``).
            **options: Any of

                - ``scope``: ``"org"``, ``"repo"`` or ``"enterprise"``; default
                  ``"repo"`` if ``name`` has a ``/``, else ``"org"``.
                - ``token``: the admin token; derived from the seed and ``name``
                  if not given. Scopes sharing a token share its limits.
                - ``labels``: custom labels seeded runners draw from.
                - ``runner_groups``: runner group ids (the first is the default).
                - ``rate_limit``: this token's primary budget per hour, instead
                  of the service's ``primary_limit``.
                - ``former_names``: names that redirect to ``name`` (renamed).

        Raises:
            ValueError: The name is taken (in any scope, current or former) or malformed.
            TypeError: An option is not one of the above.
        """
        unknown = set(options) - _ORG_OPTIONS
        if unknown:
            raise TypeError(f"unknown GitHub org options: {sorted(unknown)}")
        default: Scope = "repo" if "/" in name else "org"
        chosen: Scope = options.pop("scope", None) or default
        former = tuple(options.pop("former_names", ()))
        for taken in (name, *former):
            if self._lookup(taken) is not None:
                raise ValueError(f"org {taken!r} already exists")
        org = GitHubOrg.seeded(
            name, self._seed, runners, scope=chosen, former_names=former, **options
        )
        self.orgs[name] = org
        return org

    def rename(self, name: str, new_name: str) -> GitHubOrg:
        """Rename a scope; requests naming the old name are redirected to the new one."""
        org = self.orgs[name]
        if self._lookup(new_name) not in (None, org):
            raise ValueError(f"org {new_name!r} already exists")
        if org.scope == "repo" and new_name.count("/") != 1:
            raise ValueError("a repo is renamed to 'owner/name'")
        del self.orgs[name]
        org.former_names.append(org.name)
        org.name = new_name
        self.orgs[new_name] = org
        return org

    def account(self, org_name: str) -> SandboxAccount:
        """What a client needs to reach ``org_name``; ``KeyError`` if unknown."""
        org = self.orgs[org_name]
        return SandboxAccount(
            vendor=self.vendor,
            name=org.name,
            credentials={"token": org.token},
            options={org.scope: org.name},
        )

    def in_flight(self, token: str) -> int:
        """How many requests presenting ``token`` are being served right now."""
        return self._budgets.in_flight(credential_id(token))

    def demo(self) -> None:
        """Add the demo org ``gh-acme`` with 60 runners."""
        self.add_org("gh-acme", runners=60)

    # -- the Service protocol: serving ----------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        base = self._path_prefix + _SCOPE_PATH
        runner = f"{base}/{{runner_id}}"
        return [
            web.get(base, self._list, name="github.list_runners", allow_head=False),
            # Fixed segments before ``{runner_id}``.
            web.get(
                f"{base}/downloads",
                self._downloads,
                name="github.list_runner_applications",
                allow_head=False,
            ),
            web.post(
                f"{base}/generate-jitconfig", self._jitconfig, name="github.generate_jitconfig"
            ),
            web.post(
                f"{base}/registration-token",
                self._registration_token,
                name="github.create_registration_token",
            ),
            web.post(f"{base}/remove-token", self._remove_token, name="github.create_remove_token"),
            web.get(runner, self._get, name="github.get_runner", allow_head=False),
            web.delete(runner, self._delete, name="github.delete_runner"),
            web.get(
                f"{runner}/labels", self._list_labels, name="github.list_labels", allow_head=False
            ),
            web.post(f"{runner}/labels", self._add_labels, name="github.add_labels"),
            web.put(f"{runner}/labels", self._set_labels, name="github.set_labels"),
            web.delete(
                f"{runner}/labels", self._remove_all_labels, name="github.remove_all_labels"
            ),
            web.delete(
                f"{runner}/labels/{{label}}", self._remove_label, name="github.remove_label"
            ),
        ]

    @staticmethod
    def _presented(request: web.Request) -> str | None:
        """The token of ``Authorization: Bearer|token <t>``; the raw header otherwise."""
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() in ("bearer", "token") and value.strip():
            return value.strip()
        return header

    def credential_id(self, request: web.Request) -> str:
        presented = self._presented(request)
        return "" if presented is None else credential_id(presented)

    async def gate(
        self, request: web.Request, exchange: Exchange, handler: Handler
    ) -> web.StreamResponse:
        version = request.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in API_VERSIONS:
            return self._fail(400, f"API version {version} is not supported.", f"{DOCS}/overview")
        if not request.headers.get("User-Agent"):
            # GitHub's front end answers this in plain text (notes §1).
            return web.Response(
                status=403,
                text="Request forbidden by administrative rules. "
                "Please make sure your request has a User-Agent header.\n",
            )
        presented = self._presented(request)
        owners = [] if presented is None else self._owners(presented)
        if presented is None or not owners:
            return self._unauthenticated(request, exchange, presented)
        exchange.org = owners[0].name
        request[_TOKEN] = presented
        key = exchange.credential
        limit = self._primary_limit(presented)
        now = exchange.arrival
        budgets = self._budgets
        exhausted = limit is not None and not budgets.budget(key, limit, now).remaining
        if limit is not None and exhausted and self._settings.enforce_limits:
            response = self._fail(
                budgets.limits.status,
                f"API rate limit exceeded for user ID {owners[0].id}.",
                f"{RATE_DOCS}#about-the-primary-rate-limit",
            )
            self._rate_headers(response.headers, key, limit, now)
            return response
        wait = budgets.admit(key, mutation=request.method not in _READ_METHODS, now=now)
        if wait:
            response = self._fail(
                403,
                "You have exceeded a secondary rate limit. Please wait a few minutes before "
                "you try again. If you reach out to GitHub Support for help, please include "
                f"the request ID {self._request_id()}.",
                f"{RATE_DOCS}#about-secondary-rate-limits",
            )
            response.headers.update(self._settings.retry_after_header(wait))
            if limit is not None:
                self._rate_headers(response.headers, key, limit, now)
            return response
        if limit is not None:
            budgets.charge(key, limit, now)
        budgets.enter(key)
        try:
            served = await self._serve(request, handler)
        finally:
            budgets.leave(key)
        if limit is not None and not served.prepared:
            self._rate_headers(served.headers, key, limit, now)
        return served

    def error(self, status: int, message: str) -> web.Response:
        return self._fail(status, message, DOCS)

    def decorate(self, response: web.StreamResponse, exchange: Exchange) -> None:
        headers = response.headers
        headers["x-github-request-id"] = self._request_id()
        headers["x-github-api-version-selected"] = "2022-11-28"
        headers["x-github-media-type"] = "github.v3; format=json"
        if "x-ratelimit-limit" in headers or not exchange.credential:
            return
        # Answers that skipped the gate (injected faults): report the budget, uncharged.
        org = next((o for o in self.orgs.values() if self._holds(o, exchange.credential)), None)
        if org is not None:
            limit = self._primary_limit(org.token)
            if limit is not None:
                self._rate_headers(headers, exchange.credential, limit, exchange.arrival)

    def wrong_shape(self, operation: str) -> Any:
        if operation == "list_runners":
            return {"total_count": "many", "runners": {"id": 1}}
        if operation.endswith("labels") or operation == "remove_label":
            return {"labels": "self-hosted"}
        return [{"unexpected": True}]

    def unknown_enum(self, payload: Any) -> Any:
        if isinstance(payload, list):
            return [self.unknown_enum(item) for item in payload]
        if not isinstance(payload, dict):
            return payload
        changed = {key: self.unknown_enum(value) for key, value in payload.items()}
        if "busy" in changed and "status" in changed:
            changed["status"] = "provisioning"
        if changed.get("type") in ("read-only", "custom"):
            changed["type"] = "system"
        return changed

    # -- auth and limits ------------------------------------------------------------

    def _owners(self, token: str) -> list[GitHubOrg]:
        return [o for o in self.orgs.values() if token in (o.token, o.read_token)]

    @staticmethod
    def _holds(org: GitHubOrg, credential: str) -> bool:
        return credential in (credential_id(org.token), credential_id(org.read_token))

    def _primary_limit(self, token: str) -> int | None:
        if self._budgets.limits.primary is None:
            return None
        for org in self.orgs.values():
            if org.rate_limit is not None and token in (org.token, org.read_token):
                return org.rate_limit
        return self._budgets.limits.primary

    def _unauthenticated(
        self, request: web.Request, exchange: Exchange, presented: str | None
    ) -> web.Response:
        key = _UNAUTHENTICATED
        budgets = self._budgets
        limit = budgets.limits.unauthenticated
        now = exchange.arrival
        if budgets.budget(key, limit, now).remaining == 0 and self._settings.enforce_limits:
            response = self._fail(
                budgets.limits.status,
                f"API rate limit exceeded for {request.remote}. (But here's the good news: "
                "Authenticated requests get a higher rate limit. Check out the documentation "
                "for more details.)",
                f"{RATE_DOCS}#about-the-primary-rate-limit",
            )
        else:
            budgets.charge(key, limit, now)
            message = "Requires authentication" if presented is None else "Bad credentials"
            response = self._fail(401, message, DOCS)
        self._rate_headers(response.headers, key, limit, now)
        return response

    def _rate_headers(self, headers: CIMultiDict[str], key: str, limit: int, now: float) -> None:
        budget = self._budgets.budget(key, limit, now)
        headers["x-ratelimit-limit"] = str(limit)
        headers["x-ratelimit-remaining"] = str(budget.remaining)
        headers["x-ratelimit-used"] = str(budget.used)
        headers["x-ratelimit-reset"] = str(math.ceil(time.time() + budget.reset_after))
        headers["x-ratelimit-resource"] = "core"

    async def _serve(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except _Answer as answer:
            return answer.response
        except web.HTTPException as exc:
            return self.error(exc.status, exc.reason)

    # -- responses ------------------------------------------------------------------

    @staticmethod
    def _fail(
        status: int,
        message: str,
        documentation_url: str,
        *,
        errors: Sequence[str] | None = None,
    ) -> web.Response:
        """``basic-error``, or ``validation-error-simple`` when ``errors`` is given (notes §3)."""
        body: dict[str, Any] = {"message": message, "documentation_url": documentation_url}
        if errors is not None:
            body["errors"] = list(errors)
        body["status"] = str(status)
        return web.json_response(body, status=status)

    def _request_id(self) -> str:
        # GitHub's form: five colon-separated upper-case hex fields.
        parts = (os.urandom(2), os.urandom(2), os.urandom(3), os.urandom(3), os.urandom(4))
        return ":".join(part.hex().upper() for part in parts)

    @staticmethod
    def _docs(request: web.Request, org: GitHubOrg | None = None) -> str:
        name = request.match_info.route.name or ""
        anchor = _ANCHORS.get(name.partition(".")[2])
        if anchor is None or org is None:
            return RUNNER_DOCS
        return f"{RUNNER_DOCS}#{anchor.format(scope=_SCOPE_WORDS[org.scope])}"

    def _not_found(self, request: web.Request, org: GitHubOrg | None = None) -> _Answer:
        return _Answer(self._fail(404, "Not Found", self._docs(request, org)))

    def _invalid(self, request: web.Request, org: GitHubOrg, detail: str) -> _Answer:
        return _Answer(self._fail(422, f"Invalid request.\n\n{detail}", self._docs(request, org)))

    # -- scope resolution -----------------------------------------------------------

    def _lookup(self, name: str) -> GitHubOrg | None:
        for org in self.orgs.values():
            if org.matches(name) or org.was(name):
                return org
        return None

    def _resolve(self, kind: str, owner: str, repo: str) -> GitHubOrg | None:
        """The scope a path names, by current or former name, or by numeric id."""
        if kind == "repos":
            if not repo:
                return None
            scope: Scope = "repo"
            name = f"{owner}/{repo}"
        elif repo:
            return None
        elif kind in ("organizations", "repositories"):
            scope = "org" if kind == "organizations" else "repo"
            return next(
                (o for o in self.orgs.values() if o.scope == scope and str(o.id) == owner), None
            )
        else:
            scope = "org" if kind == "orgs" else "enterprise"
            name = owner
            if scope == "enterprise":
                by_id = next(
                    (o for o in self.orgs.values() if o.scope == scope and str(o.id) == owner),
                    None,
                )
                if by_id is not None:
                    return by_id
        org = self._lookup(name)
        return org if org is not None and org.scope == scope else None

    def _target(self, request: web.Request) -> _Target:
        """The authorized scope of ``request``; raises the 404, 403 or redirect to send."""
        info = request.match_info
        kind, owner, repo = info["kind"], info["owner"], info["repo"].lstrip("/")
        org = self._resolve(kind, owner, repo)
        token = request[_TOKEN]
        # A scope the token cannot see is indistinguishable from a missing one.
        if org is None or token not in (org.token, org.read_token):
            raise self._not_found(request)
        request[EXCHANGE].org = org.name
        # Split the raw path (still percent-encoded) from the end, where its shape
        # is known: [mount][scope segments]/actions/runners[rest].
        segments = request.rel_url.raw_path.split("/")
        operation = (info.route.name or "").partition(".")[2]
        tail = len(segments) - _TRAILING.get(operation, 0)
        scope_length = 3 if kind == "repos" else 2
        mount = "/".join(segments[: tail - 2 - scope_length])
        rest = "".join(f"/{segment}" for segment in segments[tail:])
        target = _Target(org, mount, rest)
        named = f"{owner}/{repo}" if kind == "repos" else owner
        renamed = kind in ("orgs", "repos", "enterprises") and not org.matches(named)
        if renamed and not (kind == "enterprises" and owner == str(org.id)):
            raise _Answer(self._redirect(request, target))
        if request.method not in _READ_METHODS and token != org.token:
            response = self._fail(
                403, "Resource not accessible by personal access token", self._docs(request, org)
            )
            permission = _PERMISSION.get(org.scope)
            if permission is not None:
                response.headers["x-accepted-github-permissions"] = f"{permission}=write"
            raise _Answer(response)
        return target

    def _redirect(self, request: web.Request, target: _Target) -> web.Response:
        """301 for reads, 307 (repeat the same method) otherwise, to the current name."""
        location = self._url(request, self._scope_path(target, by_id=False) + target.rest)
        if request.query_string:
            location += f"?{request.query_string}"
        return web.json_response(
            {
                "message": "Moved Permanently",
                "url": location,
                "documentation_url": f"{DOCS}/guides/best-practices-for-using-the-rest-api"
                "#follow-redirects",
            },
            status=301 if request.method in _READ_METHODS else 307,
            headers={"Location": location},
        )

    @staticmethod
    def _scope_path(target: _Target, *, by_id: bool) -> str:
        org = target.org
        if by_id and org.scope != "enterprise":
            kind = "organizations" if org.scope == "org" else "repositories"
            return f"{target.mount}/{kind}/{org.id}/actions/runners"
        kind = {"org": "orgs", "repo": "repos", "enterprise": "enterprises"}[org.scope]
        return f"{target.mount}/{kind}/{org.name}/actions/runners"

    @staticmethod
    def _url(request: web.Request, path: str) -> str:
        return f"{request.scheme}://{request.host}{path}"

    def _runner(self, request: web.Request) -> tuple[GitHubOrg, dict[str, Any]]:
        org = self._target(request).org
        text = request.match_info["runner_id"]
        runner = org.runners.get(int(text)) if text.isascii() and text.isdigit() else None
        if runner is None:
            raise self._not_found(request, org)
        return org, runner

    async def _body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise _Answer(self._fail(400, "Problems parsing JSON", DOCS)) from None
        if not isinstance(body, dict):
            raise _Answer(self._fail(400, "Body should be a JSON object", DOCS))
        return body

    async def _label_names(
        self, request: web.Request, org: GitHubOrg, *, minimum: int
    ) -> list[str]:
        body = await self._body(request)
        if "labels" not in body:
            raise self._invalid(request, org, '"labels" wasn\'t supplied.')
        return self._check_labels(request, org, body["labels"], minimum)

    def _check_labels(
        self, request: web.Request, org: GitHubOrg, labels: Any, minimum: int
    ) -> list[str]:
        if not isinstance(labels, list) or not all(
            isinstance(label, str) and label.strip() for label in labels
        ):
            raise self._invalid(
                request, org, "For 'properties/labels', the value is not an array of names."
            )
        if not minimum <= len(labels) <= _MAX_LABELS:
            raise self._invalid(
                request,
                org,
                f"For 'properties/labels', {len(labels)} items are not within "
                f"{minimum}..{_MAX_LABELS}.",
            )
        return [label.strip() for label in labels]

    # -- handlers -------------------------------------------------------------------

    async def _list(self, request: web.Request) -> web.StreamResponse:
        target = self._target(request)
        runners = list(target.org.runners.values())
        name = request.query.get("name")
        if name is not None:
            runners = [r for r in runners if r["name"].lower() == name.lower()]
        per_page = _positive(request.query.get("per_page"), _PER_PAGE_DEFAULT)
        per_page = min(per_page, _PER_PAGE_MAX)
        page = _positive(request.query.get("page"), 1)
        start = (page - 1) * per_page
        response = web.json_response(
            {"total_count": len(runners), "runners": runners[start : start + per_page]}
        )
        link = self._link(
            request, target, page=page, per_page=per_page, total=len(runners), name=name
        )
        if link:
            response.headers["Link"] = link
        return response

    def _link(
        self,
        request: web.Request,
        target: _Target,
        *,
        page: int,
        per_page: int,
        total: int,
        name: str | None,
    ) -> str:
        """RFC 8288 ``Link`` as GitHub writes it; "" when one page holds everything."""
        last = max(1, -(-total // per_page))
        if page == 1 and last == 1:
            return ""
        base = self._url(request, self._scope_path(target, by_id=self._link_by_id))
        fixed = {"per_page": per_page} if name is None else {"name": name, "per_page": per_page}

        def entry(n: int, rel: str) -> str:
            return f'<{base}?{urlencode({**fixed, "page": n})}>; rel="{rel}"'

        parts = []
        if page > 1:
            parts.append(entry(page - 1, "prev"))
        if page < last:
            parts += [entry(page + 1, "next"), entry(last, "last")]
        if page > 1:
            parts.append(entry(1, "first"))
        return ", ".join(parts)

    async def _downloads(self, request: web.Request) -> web.StreamResponse:
        self._target(request)
        releases = "https://github.com/actions/runner/releases/download"
        applications = []
        for system, arch in _APPLICATIONS:
            extension = "zip" if system == "win" else "tar.gz"
            filename = f"actions-runner-{system}-{arch}-{_RUNNER_VERSION}.{extension}"
            applications.append(
                {
                    "os": system,
                    "architecture": arch,
                    "download_url": f"{releases}/v{_RUNNER_VERSION}/{filename}",
                    "filename": filename,
                    "sha256_checksum": f"{random.Random(filename).getrandbits(256):064x}",
                }
            )
        return web.json_response(applications)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        _, runner = self._runner(request)
        return web.json_response(runner)

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        org, runner = self._runner(request)
        if runner["busy"]:
            # validation-error-simple; wording from a reported GitHub answer (notes §2.4).
            return self._fail(
                422,
                f'Bad request - Runner "{runner["name"]}" is still running a job"',
                self._docs(request, org),
            )
        org.remove_runner(runner["id"])
        return web.Response(status=204)

    async def _jitconfig(self, request: web.Request) -> web.StreamResponse:
        target = self._target(request)
        org = target.org
        body = await self._body(request)
        missing = [key for key in ("name", "runner_group_id", "labels") if key not in body]
        if missing:
            quoted = ", ".join(f'"{key}"' for key in missing)
            verb = "wasn't" if len(missing) == 1 else "weren't"
            raise self._invalid(request, org, f"{quoted} {verb} supplied.")
        name, group = body["name"], body["runner_group_id"]
        work_folder = body.get("work_folder", "_work")
        if not isinstance(name, str) or not name.strip():
            raise self._invalid(request, org, "For 'properties/name', the value is not a string.")
        if not isinstance(group, int) or isinstance(group, bool):
            raise self._invalid(
                request, org, "For 'properties/runner_group_id', the value is not an integer."
            )
        if not isinstance(work_folder, str):
            raise self._invalid(
                request, org, "For 'properties/work_folder', the value is not a string."
            )
        labels = self._check_labels(request, org, body["labels"], 1)
        if group not in org.runner_groups:
            raise self._not_found(request, org)
        if org.find(name) is not None:
            return self._fail(
                409,
                f"Already exists - A runner with the name {name} already exists.",
                self._docs(request, org),
            )
        url = f"https://github.com/{org.name}"
        if org.scope == "enterprise":
            url = f"https://github.com/enterprises/{org.name}"
        runner, config = org.create_jit(name, labels, group, work_folder, url)
        return web.json_response({"runner": runner, "encoded_jit_config": config}, status=201)

    async def _mint(
        self, request: web.Request, kind: Literal["registration", "remove"]
    ) -> web.StreamResponse:
        org = self._target(request).org
        minted = org.mint(kind, utcnow())
        return web.json_response(
            {"token": minted.token, "expires_at": expires_at(minted.expires_at)}, status=201
        )

    async def _registration_token(self, request: web.Request) -> web.StreamResponse:
        return await self._mint(request, "registration")

    async def _remove_token(self, request: web.Request) -> web.StreamResponse:
        return await self._mint(request, "remove")

    @staticmethod
    def _labels(runner: Mapping[str, Any]) -> web.Response:
        labels = runner["labels"]
        return web.json_response({"total_count": len(labels), "labels": labels})

    async def _list_labels(self, request: web.Request) -> web.StreamResponse:
        _, runner = self._runner(request)
        return self._labels(runner)

    async def _add_labels(self, request: web.Request) -> web.StreamResponse:
        org, runner = self._runner(request)
        names = await self._label_names(request, org, minimum=1)
        present = {label["name"].lower() for label in runner["labels"]}
        for name in names:
            if name.lower() not in present:
                present.add(name.lower())
                runner["labels"].append(org.label(name, "custom"))
        return self._labels(runner)

    async def _set_labels(self, request: web.Request) -> web.StreamResponse:
        org, runner = self._runner(request)
        names = await self._label_names(request, org, minimum=0)
        kept = [label for label in runner["labels"] if label["type"] == "read-only"]
        present = {label["name"].lower() for label in kept}
        for name in names:
            if name.lower() not in present:
                present.add(name.lower())
                kept.append(org.label(name, "custom"))
        runner["labels"] = kept
        return self._labels(runner)

    async def _remove_all_labels(self, request: web.Request) -> web.StreamResponse:
        _, runner = self._runner(request)
        runner["labels"] = [label for label in runner["labels"] if label["type"] == "read-only"]
        return self._labels(runner)

    async def _remove_label(self, request: web.Request) -> web.StreamResponse:
        org, runner = self._runner(request)
        wanted = request.match_info["label"].lower()
        found = next((lb for lb in runner["labels"] if lb["name"].lower() == wanted), None)
        if found is None:
            raise self._not_found(request, org)
        if found["type"] != "custom":
            # Read-only labels belong to the runner's configuration (notes §3).
            return self._fail(
                422,
                "Validation Failed",
                self._docs(request, org),
                errors=[f"Cannot remove read-only label {found['name']!r}."],
            )
        runner["labels"] = [label for label in runner["labels"] if label is not found]
        return self._labels(runner)


def _positive(text: str | None, default: int) -> int:
    """A positive integer query parameter; ``default`` if absent or not one, leniently."""
    if text is None or not (text.isascii() and text.isdigit()) or int(text) < 1:
        return default
    return int(text)
