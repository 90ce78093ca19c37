"""Kubiya runners (REST API v3).

Contract: Kubiya's Runners API page (nine routes, bodies omitted) and the
notes on what Kubiya's own CLI, Terraform provider and SDK send and decode.
Shapes decoded by Kubiya's code are followed; the rest is read leniently:
unknown fields and values are kept in ``raw``, never a crash.

Assumed where Kubiya is silent (see docs/vendors.md):
- Limits: 100 requests per minute and 20 per 10 s per key, for all routes
  together (Kubiya's docs; no client of theirs enforces them).
- ``POST /runners/{name}`` on an existing name returns the manifest URL again.
- The health route answers non-2xx for a runner that does not report; that is
  not retried, since retrying burns the shared per-key budget.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Final, Unpack

import attrs

from .. import errors
from .._convert import as_str, make_wire_converter, parse_timestamp, structure
from .._http import ClientOptions, HTTPCore, Response, Route, VendorSpec, decode_json
from .._sansio import ErrorInfo, error_code, error_text, json_object
from ..limits import RateLimit
from ..models import CreatedRunner, HealthCheck, Runner, RunnerHealth, RunnerKind, RunnerStatus
from ..provider import Capability, CredentialField, VendorOption
from ._base import ProviderBase

__all__ = [
    "DEFAULT_BASE_URL",
    "KubiyaProvider",
    "health_from_wire",
    "parse_error",
    "runner_from_wire",
]

DEFAULT_BASE_URL: Final = "https://api.kubiya.ai"


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
    """Kubiya's error bodies, in the shapes its services and gateway send.

    ``{"code": int, "error": str}``, ``{"error": {"code", "message"}}``,
    ``{"message": str}`` and FastAPI's ``{"detail": ...}`` (a structured detail
    becomes bounded JSON text). ``error.code`` wins over a top-level ``code``,
    and ``message`` over a string ``error``. Anything else gives an empty
    :class:`ErrorInfo`, and the core describes the status instead.
    """
    data = json_object(headers, body)
    if data is None:
        return ErrorInfo()
    code = data.get("code")
    message: Any = data.get("message")
    error = data.get("error")
    if isinstance(error, dict):
        code = error.get("code", code)
        message = error.get("message", message)
    elif isinstance(error, str) and message is None:
        message = error
    if message is None:
        message = data.get("detail")
    return ErrorInfo(code=error_code(code), message=error_text(message))


KUBIYA: Final = VendorSpec(
    name="kubiya",
    # One budget per key for every route ("*"): 100/min with a burst of 20 per 10 s.
    limits={"*": (RateLimit(100, 60), RateLimit(20, 10))},
    trace_headers=("X-Request-Id", "X-Trace-Id"),
    parse_error=parse_error,
)

_LIST: Final = Route("list_runners", "GET", "/api/v3/runners")
# Kubiya documents no cheaper authenticated route than the (unpaginated) listing.
_VERIFY: Final = Route("verify", "GET", "/api/v3/runners")
_GET: Final = Route("get_runner", "GET", "/api/v3/runners/{runner}/describe")
_HEALTH: Final = Route(
    "runner_health", "GET", "/api/v3/runners/{runner}/health", retry_server_errors=False
)
_CREATE: Final = Route("create_runner", "POST", "/api/v3/runners/{runner}")
_DELETE: Final = Route("delete_runner", "DELETE", "/api/v3/runners/{runner}")
_DESCRIBE: Final = Route("update_description", "PUT", "/api/v3/runners/description/{runner}")
_HELM_VALUES: Final = Route("helm_values", "GET", "/api/v3/runners/helmchart/{runner}")
# The segment may be a manifest URL's key, which works without auth: never log it.
_MANIFEST: Final = Route(
    "deployment_manifest", "GET", "/api/v3/runners/helm/{runner}", log_params=False
)
_OPS: Final = Route("run_operation", "POST", "/api/v3/runners/{runner}/ops")

# runner_type values: "managed_cloud" is Kubiya-operated; Kubiya's operator types
# ("kubiya_operator", "kubiya_operator_v2", ...) run in the customer's cluster.
# Anything else is kept in raw and reported as UNKNOWN.
_MANAGED_TYPES: Final = frozenset({"managed_cloud"})
_OPERATOR_TYPE: Final = re.compile(r"kubiya_operator(_v\d+)?")

_OK: Final = frozenset({"ok", "healthy", "ready", "running"})
_DEGRADED: Final = frozenset({"degraded", "warning"})
_DOWN: Final = frozenset({"non-responsive", "unhealthy", "error", "failed", "down", "offline"})

_GENERATIONS: Final[Mapping[int, str]] = {0: "v1", 2: "v2"}
_COMPONENTS: Final = (
    ("runner_health", "runner"),
    ("tool_manager_health", "tool_manager"),
    ("agent_manager_health", "agent_manager"),
)

_wire = make_wire_converter()


@attrs.frozen
class _Check:
    name: str | None = None
    status: str | None = None
    version: str | None = None
    error: str | None = None


@attrs.frozen
class _Health:
    health: Any = None  # "true"/"false" on the wire; read leniently by overall_status
    status: str | None = None
    time: str | None = None
    version: str | None = None
    error: str | None = None
    checks: list[Any] | None = None


def _kind(runner_type: Any) -> RunnerKind:
    if not isinstance(runner_type, str):
        return RunnerKind.UNKNOWN
    if runner_type in _MANAGED_TYPES:
        return RunnerKind.MANAGED
    if _OPERATOR_TYPE.fullmatch(runner_type):
        return RunnerKind.SELF_HOSTED
    return RunnerKind.UNKNOWN


def _word_status(status: Any) -> RunnerStatus:
    word = status.strip().lower() if isinstance(status, str) else ""
    if word in _OK:
        return RunnerStatus.ONLINE
    if word in _DEGRADED:
        return RunnerStatus.DEGRADED
    if word in _DOWN:
        return RunnerStatus.OFFLINE
    return RunnerStatus.UNKNOWN


def overall_status(health: Any, status: Any, checks: tuple[HealthCheck, ...] = ()) -> RunnerStatus:
    """Kubiya's ``health`` ("true"/"false") and ``status`` words as one status.

    ``health: "false"`` is down whatever the words say; a healthy runner with
    a degraded or failing check is degraded; unknown words stay UNKNOWN.
    """
    flag = str(health).strip().lower() if isinstance(health, (str, bool)) else ""
    if flag == "false":
        return RunnerStatus.OFFLINE
    result = _word_status(status)
    if result is RunnerStatus.UNKNOWN and flag == "true" and not status:
        result = RunnerStatus.ONLINE
    if result is RunnerStatus.ONLINE and any(
        check.status in (RunnerStatus.DEGRADED, RunnerStatus.OFFLINE) for check in checks
    ):
        return RunnerStatus.DEGRADED
    return result


def runner_from_wire(data: Any, account: str) -> Runner:
    """Map a Kubiya runner object (list item or describe) to a :class:`Runner`.

    Raises:
        ResponseFormatError: when ``data`` is not an object with a string ``name``.
    """
    if not isinstance(data, dict):
        raise errors.ResponseFormatError("runner: expected a JSON object")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise errors.ResponseFormatError("runner: missing or non-string name")
    versions: dict[str, str] = {}
    generation = data.get("version")
    if isinstance(generation, int) and not isinstance(generation, bool):
        versions["generation"] = _GENERATIONS.get(generation, str(generation))
    elif isinstance(generation, str) and generation:
        versions["generation"] = generation
    status = RunnerStatus.UNKNOWN
    for field, component in _COMPONENTS:
        health = data.get(field)
        if not isinstance(health, dict):
            continue
        version = health.get("version")
        if isinstance(version, str) and version:
            versions[component] = version
        if field == "runner_health" and (health.get("health") or health.get("status")):
            status = overall_status(health.get("health"), health.get("status"))
    return Runner(
        provider="kubiya",
        account=account,
        id=name,
        name=name,
        kind=_kind(data.get("runner_type")),
        status=status,
        description=as_str(data.get("description")),
        versions=versions,
        raw=data,
    )


def health_from_wire(data: Any) -> RunnerHealth:
    """Map the health route's body to a :class:`RunnerHealth`.

    Raises:
        ResponseFormatError: when the body is not an object of the known shape.
    """
    body = structure(_wire, data, _Health, "runner health")
    checks = tuple(
        HealthCheck(
            name=check.name or "unnamed",
            status=_word_status(check.status),
            version=check.version or None,
            error=check.error or None,
        )
        for check in (
            structure(_wire, item, _Check, "runner health check") for item in body.checks or ()
        )
    )
    return RunnerHealth(
        status=overall_status(body.health, body.status, checks),
        checks=checks,
        checked_at=parse_timestamp(body.time),
        raw=data,
    )


def _not_created(unknown: errors.OutcomeUnknownError, name: str) -> errors.RunnerHubError:
    """The plain error of a create that a describe proved did not happen."""
    message = f"{unknown.message}; runner {name!r} does not exist afterwards: not created"
    context: dict[str, Any] = {
        "provider": unknown.provider,
        "account": unknown.account,
        "operation": unknown.operation,
    }
    if isinstance(unknown, errors.APIError):
        return errors.ServerError(
            message, status=unknown.status, code=unknown.code, trace_id=unknown.trace_id, **context
        )
    return errors.TransportError(message, **context)


def _passthrough(response: Response) -> Any:
    # Bodies Kubiya documents only loosely: JSON when it is JSON, else text, None if empty.
    if not response.body.strip():
        return None
    try:
        return decode_json(response.body)
    except ValueError:
        return response.body.decode("utf-8", errors="replace")


class KubiyaProvider(ProviderBase):
    """Kubiya runners of the organisation an API key belongs to.

    Args:
        api_key: The Kubiya API key (sent as ``Authorization: UserKey <key>``).
        base_url: API host (default https://api.kubiya.ai).
        account: Label used in models and errors (default ``"kubiya"``).
        **options: The keywords every provider takes; see :class:`runnerhub.SodaProvider`.
            ``rate_limits`` keys are operation names, or ``"*"`` for the shared
            per-key budget.

    Raises:
        UsageError: for an empty or malformed key, or an insecure base URL.
    """

    provider: ClassVar[str] = "kubiya"
    title: ClassVar[str] = "Kubiya"
    credentials: ClassVar[tuple[CredentialField, ...]] = (
        CredentialField("api_key", "KUBIYA_API_KEY"),
    )
    options: ClassVar[tuple[VendorOption, ...]] = ()
    capabilities = frozenset(
        {
            Capability.LIST,
            Capability.GET,
            Capability.CREATE,
            Capability.DELETE,
            Capability.HEALTH,
            Capability.HEALTH_CHECK,
            Capability.UPDATE_DESCRIPTION,
            Capability.DEPLOYMENT_MANIFEST,
            Capability.HELM_VALUES,
            Capability.RUN_OPERATION,
        }
    )
    #: Kubiya's documented per-key budget ("*": every route); ``rate_limits=`` overrides it.
    default_limits: ClassVar[Mapping[str, tuple[RateLimit, ...]]] = KUBIYA.limits

    def __init__(self, api_key: str, **options: Unpack[ClientOptions]) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise errors.UsageError("KubiyaProvider needs an api_key")
        self._http = HTTPCore(
            KUBIYA,
            auth_headers={"Authorization": f"UserKey {api_key}"},
            credential_id=api_key,
            default_base_url=DEFAULT_BASE_URL,
            default_account="kubiya",
            options=options,
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **options: Unpack[ClientOptions]
    ) -> KubiyaProvider:
        """Build from ``KUBIYA_API_KEY`` and ``KUBIYA_BASE_URL``.

        A base URL ending in ``/api/v1`` (as Kubiya's CLI stores it) is trimmed.

        Raises:
            UsageError: when ``KUBIYA_API_KEY`` is not set.
        """
        env = os.environ if environ is None else environ
        key = env.get("KUBIYA_API_KEY")
        if not key:
            raise errors.UsageError("set KUBIYA_API_KEY")
        base = env.get("KUBIYA_BASE_URL")
        if base and "base_url" not in options:
            options["base_url"] = base.rstrip("/").removesuffix("/api/v1")
        return cls(key, **options)

    async def verify(self) -> None:
        """Check the key with one listing request (Kubiya has no cheaper authenticated route).

        Raises:
            AuthenticationError: for a key Kubiya refuses.
        """
        await self._http.request(_VERIFY)

    def _format(self, route: Route, exc: errors.ResponseFormatError) -> errors.ResponseFormatError:
        return self._http.format_error(route.operation, exc.message)

    async def list_runners(self) -> AsyncIterator[Runner]:
        """Yield every runner (Kubiya returns them all in one unpaginated array)."""
        data = await self._http.request_json(_LIST)
        if isinstance(data, dict):  # tolerated wrappers, as Kubiya's own proxy does
            data = data.get("runners", data.get("data"))
        if not isinstance(data, list):
            raise self._http.format_error(_LIST.operation, "expected a JSON array of runners")
        account = self.account
        try:
            runners = [runner_from_wire(item, account) for item in data]
        except errors.ResponseFormatError as exc:
            raise self._format(_LIST, exc) from None
        for runner in runners:
            yield runner

    async def get_runner(self, runner_id: str) -> Runner:
        """Return one runner by name (``/describe``).

        Raises:
            NotFoundError: when there is no runner of that name.
        """
        data = await self._http.request_json(_GET, {"runner": runner_id})
        try:
            return runner_from_wire(data, self.account)
        except errors.ResponseFormatError as exc:
            raise self._format(_GET, exc) from None

    async def runner_health(self, runner_id: str) -> RunnerHealth:
        """The runner's health and its component checks (``/health``).

        Raises:
            APIError: when Kubiya answers non-2xx (a runner that does not report).
        """
        data = await self._http.request_json(_HEALTH, {"runner": runner_id})
        try:
            return health_from_wire(data)
        except errors.ResponseFormatError as exc:
            raise self._format(_HEALTH, exc) from None

    async def create_runner(
        self, name: str | None = None, *, verify_on_unknown: bool = False
    ) -> CreatedRunner:
        """Create a runner named ``name``; the result carries its manifest URL.

        The manifest URL works without authentication (it is a capability URL):
        treat it as a secret. Never retried once the request may have reached
        Kubiya.

        Args:
            name: The runner's name (Kubiya's id for it).
            verify_on_unknown: When the create's outcome is unknown (a 5xx, or
                the connection reset or timed out after sending), describe the
                runner by name (one GET) instead of raising at once. If it
                exists, return a ``CreatedRunner`` without a manifest URL (get
                the manifest with :meth:`deployment_manifest`); Kubiya answers a
                create of an existing name with the same runner, so a runner
                that existed before the call counts as created too. If the
                describe says 404, raise the plain ``ServerError`` or
                ``TransportError``: the runner was not created (this assumes
                Kubiya creates synchronously; see docs/vendors.md). If the
                describe fails too, the original error is raised.

        Raises:
            UsageError: when no name is given.
            OutcomeUnknownError: (as ``OutcomeUnknownServerError`` or
                ``OutcomeUnknownTransportError``) when the runner may or may not
                have been created and ``verify_on_unknown`` is false or could
                not settle it.
        """
        if not name:
            raise errors.UsageError("Kubiya runners are created by name: create_runner(name)")
        try:
            response = await self._http.request(_CREATE, {"runner": name}, json_body={})
        except errors.OutcomeUnknownError as unknown:
            if not verify_on_unknown:
                raise
            return await self._settle_create(name, unknown)
        data = self._http.decode(_CREATE, response)
        url = data.get("url") if isinstance(data, dict) else None
        return CreatedRunner(
            runner_id=name, name=name, manifest_url=url if isinstance(url, str) else None, raw=data
        )

    async def _settle_create(
        self, name: str, unknown: errors.OutcomeUnknownError
    ) -> CreatedRunner:
        # One describe decides a create whose outcome was unknown (see create_runner).
        try:
            runner = await self.get_runner(name)
        except errors.NotFoundError:
            raise _not_created(unknown, name) from None
        except errors.RunnerHubError:
            raise unknown from None
        return CreatedRunner(runner_id=name, name=name, raw=runner.raw)

    async def delete_runner(self, runner_id: str) -> None:
        """Delete a runner (Kubiya answers 200 with no body)."""
        await self._http.request(_DELETE, {"runner": runner_id})

    async def update_description(self, runner_id: str, description: str) -> Any:
        """Set the description; returns Kubiya's answer (JSON, text, or None)."""
        if not isinstance(description, str):
            raise errors.UsageError("description must be a string")
        response = await self._http.request(
            _DESCRIBE, {"runner": runner_id}, json_body={"description": description}
        )
        return _passthrough(response)

    async def helm_values(self, runner_id: str) -> Mapping[str, Any] | bytes:
        """The runner's Helm values as JSON (they hold NATS JWTs: secrets).

        Kubiya's docs call this a chart archive; its code reads JSON. A body
        that is not a JSON object is returned as bytes.
        """
        response = await self._http.request(_HELM_VALUES, {"runner": runner_id})
        try:
            data = decode_json(response.body)
        except ValueError:
            return response.body
        return data if isinstance(data, dict) else response.body

    async def deployment_manifest(self, runner_id: str) -> str:
        """The runner's Kubernetes manifest as YAML text (never parsed).

        ``runner_id`` may also be the ``<key>.yaml`` segment of a manifest URL.
        """
        response = await self._http.request(_MANIFEST, {"runner": runner_id})
        return response.body.decode("utf-8", errors="replace")

    async def run_operation(
        self, runner_id: str, operation: str, parameters: Mapping[str, Any] | None = None
    ) -> Any:
        """Run an operation such as ``"restart"``; returns Kubiya's answer as is."""
        if not isinstance(operation, str) or not operation:
            raise errors.UsageError("operation must be a non-empty string")
        body = {"operation": operation, "parameters": dict(parameters or {})}
        response = await self._http.request(_OPS, {"runner": runner_id}, json_body=body)
        return _passthrough(response)
