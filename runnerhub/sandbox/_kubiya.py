"""Kubiya REST v3 runners, with the shapes ``kubiya-runners-notes.md`` confirms from code."""

from __future__ import annotations

import base64
import gzip
import io
import json
import random
import re
import string
import tarfile
import uuid
from typing import Any, Literal

import attrs
from aiohttp import web

from ._common import (
    Exchange,
    Handler,
    Settings,
    Vendor,
    credential_id,
    html_page,
    rfc3339,
    utcnow,
)
from ._window import format_seconds

HealthState = Literal["ok", "degraded", "non-responsive", "missing"]
ErrorStyle = Literal["code_error", "nested", "message", "detail", "html"]
HelmchartFormat = Literal["json", "tgz"]

# 100 per minute per key, with a burst window of 20 per 10 s (notes §4).
KUBIYA_LIMITS: tuple[tuple[int, float], ...] = ((100, 60.0), (20, 10.0))

OPERATIONS = frozenset({"restart", "stop", "start"})
_NAME = re.compile(r"[a-z0-9-]{1,63}")
_KEY_SEGMENT = re.compile(r"[0-9a-f]{40}\.yaml")
_UNHEALTHY: tuple[HealthState, ...] = ("degraded", "non-responsive", "missing")
_RUNNER_VERSIONS = ("0.18.3", "0.18.3", "0.18.3", "0.17.9", "0.16.2")
_ERROR_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}
_DESCRIPTIONS = (
    "",
    "",
    "Runs platform tools",
    "Data platform jobs",
    "Managed by the platform team",
    "Incident response tooling",
)
_ENVS = ("prod", "staging", "dev", "qa")
_CLUSTERS = ("eks", "gke", "aks", "k3s")
_EMPTY_HEALTH = {"status": "", "health": "", "error": "", "version": ""}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=n))


def _nkey(rng: random.Random, prefix: str) -> str:
    """An NATS nkey lookalike: a role prefix and base32 characters, 56 in all."""
    return prefix + "".join(rng.choices(string.ascii_uppercase + "234567", k=56 - len(prefix)))


def _jwt(rng: random.Random, name: str, subject: str) -> str:
    """A NATS user JWT lookalike: header, claims and a random ed25519-sized signature."""
    header = {"typ": "JWT", "alg": "ed25519-nkey"}
    claims = {
        "jti": _nkey(rng, "")[:52],
        "iat": 1_735_689_600 + rng.randrange(31_536_000),
        "iss": _nkey(rng, "A"),
        "name": name,
        "sub": _nkey(rng, "U"),
        "nats": {"pub": {"allow": [subject]}, "sub": {"allow": [subject]}, "type": "user"},
    }
    compact = (",", ":")
    parts = (
        json.dumps(header, separators=compact).encode(),
        json.dumps(claims, separators=compact).encode(),
        rng.randbytes(64),
    )
    return ".".join(_b64url(part) for part in parts)


@attrs.frozen
class _Secrets:
    """Per-runner values derived from the org seed and the runner name alone."""

    uuid: str
    version: str
    git_sha: str
    jwt: str = attrs.field(repr=False)
    second_jwt: str = attrs.field(repr=False)
    nkey_seed: str = attrs.field(repr=False)

    @classmethod
    def derive(cls, seed: str, org: str, name: str) -> _Secrets:
        rng = random.Random(f"{seed}:runner:{name}")
        subject = f"{org}.runnerv2.{name}.incoming"
        return cls(
            uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            version=rng.choice(_RUNNER_VERSIONS),
            git_sha=rng.randbytes(20).hex(),
            jwt=_jwt(rng, name, subject),
            second_jwt=_jwt(rng, name, subject),
            nkey_seed=_nkey(rng, "SUA"),
        )


@attrs.define(eq=False)
class KubiyaOrg:
    """One Kubiya organisation: its API key, runners and their health.

    ``runners`` maps runner name to the wire object of ``GET /api/v3/runners``;
    ``health`` maps the same names to what ``/health`` reports. Both are read
    on every request, so tests may edit them while serving.
    """

    name: str
    api_key: str = attrs.field(repr=False)
    runners: dict[str, dict[str, Any]] = attrs.field(factory=dict, repr=False)
    health: dict[str, HealthState] = attrs.field(factory=dict, repr=False)
    user_id: str = attrs.field(default="", repr=False)
    _seed: str = attrs.field(default="", repr=False)
    _rng: random.Random = attrs.field(factory=random.Random, repr=False)
    # 40-hex manifest key -> runner name, and back; a key is minted on first create.
    _keys: dict[str, str] = attrs.field(factory=dict, init=False, repr=False)
    _key_of: dict[str, str] = attrs.field(factory=dict, init=False, repr=False)

    @classmethod
    def seeded(
        cls,
        name: str,
        seed: int,
        runners: int = 0,
        *,
        unhealthy: int = 0,
        api_key: str | None = None,
    ) -> KubiyaOrg:
        """An org whose key, runners and health derive from ``seed`` and ``name``.

        With ``runners >= 1`` the first runner is ``kubiya-hosted`` (``managed_cloud``),
        always healthy; with ``runners >= 3`` the second is a legacy ``kubiya_operator``.
        ``unhealthy`` other runners are degraded, non-responsive or not reporting.
        """
        seed_text = f"kubiya:{seed}:{name}"
        rng = random.Random(seed_text)
        drawn_key = _b64url(rng.randbytes(33))
        user_id = rng.randbytes(12).hex()
        org = cls(name, api_key or drawn_key, user_id=user_id, seed=seed_text, rng=rng)
        for n in range(runners):
            org._seed_runner(n, runners)
        candidates = [runner for runner in org.runners if runner != "kubiya-hosted"]
        if unhealthy > len(candidates):
            raise ValueError(f"cannot make {unhealthy} of {len(candidates)} runners unhealthy")
        for i, runner in enumerate(rng.sample(candidates, unhealthy)):
            org.set_health(runner, _UNHEALTHY[i % len(_UNHEALTHY)])
        return org

    def add_runner(
        self, name: str, *, health: HealthState = "ok", **overrides: Any
    ) -> dict[str, Any]:
        """Add a ``kubiya_operator_v2`` runner; ``overrides`` replace its wire fields."""
        runner = self._payload(name)
        runner.update(overrides)
        self.runners[name] = runner
        self.health[name] = health
        return runner

    def remove_runner(self, name: str) -> None:
        """Forget a runner and its manifest key; ``KeyError`` if unknown."""
        del self.runners[name]
        self.health.pop(name, None)
        key = self._key_of.pop(name, None)
        if key is not None:
            del self._keys[key]

    def set_health(self, name: str, state: HealthState) -> None:
        """Change what ``/health`` reports, and the list's health fields if they are filled."""
        self.health[name] = state
        runner = self.runners[name]
        if runner["runner_health"]["status"]:
            self._fill_health(runner)

    def manifest_key(self, name: str) -> str:
        """The 40-hex key of ``name``'s manifest URL, minted on first use."""
        key = self._key_of.get(name)
        if key is None:
            key = self._rng.randbytes(20).hex()
            self._keys[key] = name
            self._key_of[name] = key
        return key

    def runner_for_key(self, key: str) -> str | None:
        """The runner a manifest key belongs to."""
        return self._keys.get(key)

    def _secrets(self, name: str) -> _Secrets:
        return _Secrets.derive(self._seed, self.name, name)

    def _payload(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "wss_url": "",
            "task_id": "",
            "managed_by": "",
            "description": "",
            "authentication_type": "",
            "version": 2,
            "runner_type": "kubiya_operator_v2",
            "gateway_url": None,
            "gateway_password": None,
            "namespace": "kubiya",
            "subject": f"{self.name}.runnerv2.{name}.incoming",
            "user_key_id": "*****",
            "runner_health": dict(_EMPTY_HEALTH),
            "tool_manager_health": dict(_EMPTY_HEALTH),
            "agent_manager_health": dict(_EMPTY_HEALTH),
            "kubernetes_namespace": "",
        }

    def _seed_runner(self, n: int, total: int) -> None:
        rng = self._rng
        if n == 0:
            runner = self._payload("kubiya-hosted")
            runner.update(runner_type="managed_cloud", description="Kubiya managed runner")
        else:
            name = f"{rng.choice(_ENVS)}-{rng.choice(_CLUSTERS)}-{n:02d}"
            runner = self._payload(name)
            runner["description"] = rng.choice(_DESCRIPTIONS)
            if n == 1 and total >= 3:
                runner.update(runner_type="kubiya_operator", version=0)
            elif rng.random() < 0.1:
                runner["version"] = 0
            if rng.random() < 0.2:
                runner.update(
                    managed_by="terraform", task_id=str(uuid.UUID(int=rng.getrandbits(128)))
                )
            if rng.random() < 0.3:
                runner["gateway_url"] = f"https://{name}.gateway.kubiya.ai"
                runner["gateway_password"] = _alnum(rng, 32)
            if rng.random() < 0.15:
                runner.update(namespace="", kubernetes_namespace="kubiya-runner")
            if rng.random() < 0.2:
                runner["wss_url"] = f"wss://{name}.runners.kubiya.ai/ws"
        self.runners[runner["name"]] = runner
        self.health[runner["name"]] = "ok"
        # The list usually leaves health empty; a few runners carry it (notes §3.1).
        if n == 0 or rng.random() < 0.15:
            self._fill_health(runner)

    def _fill_health(self, runner: dict[str, Any]) -> None:
        state = self.health.get(runner["name"], "ok")
        version = self._secrets(runner["name"]).version
        healthy = state in ("ok", "degraded")
        summary = {
            "status": state if state != "missing" else "unknown",
            "health": "true" if healthy else "false",
            "error": "" if healthy else "runner is not responding",
            "version": version,
        }
        runner["runner_health"] = summary
        runner["tool_manager_health"] = {
            **summary,
            "status": "ok" if healthy else summary["status"],
        }
        runner["agent_manager_health"] = dict(summary)

    def health_report(self, name: str) -> dict[str, Any]:
        """The body of ``GET /health`` for a runner that is reporting."""
        state = self.health.get(name, "ok")
        s = self._secrets(name)
        metadata = {"git_sha": s.git_sha, "release": f"v{s.version}"}
        tool = {
            "name": "tool-manager",
            "status": "ok",
            "version": s.version,
            "error": "",
            "metadata": metadata,
        }
        agent = {
            "name": "agent-manager",
            "status": "ok",
            "version": s.version,
            "error": "",
            "metadata": dict(metadata),
        }
        engine = {"name": "workflow-engine", "status": "ok"}
        health, status = "true", "ok"
        if state == "degraded":
            agent.update(status="degraded", error="agent-manager: 1 of 2 replicas ready")
        elif state == "non-responsive":
            health, status = "false", "non-responsive"
            tool.update(status="error", error="context deadline exceeded")
            agent.update(
                status="error", error="dial tcp 10.0.3.17:8080: connect: connection refused"
            )
            engine["status"] = "unknown"
        return {
            "health": health,
            "status": status,
            "time": rfc3339(utcnow()),
            "version": s.version,
            "checks": [tool, agent, engine],
        }

    def helm_values(self, name: str) -> dict[str, Any]:
        """The Helm values of ``GET /helmchart`` (notes §3.7)."""
        s = self._secrets(name)
        return {
            "alloy": {
                "alloy": {
                    "configMap": {"create": False, "key": "config.alloy", "name": "alloy-config"},
                    "extraEnv": [
                        {"name": "KUBIYA_RUNNER_NAME", "value": name},
                        {"name": "KUBIYA_ORGANIZATION", "value": self.name},
                    ],
                    "securityContext": {"runAsGroup": 0, "runAsUser": 0},
                }
            },
            "nats": {
                "jwt": s.jwt,
                "secondJwt": s.second_jwt,
                "subject": self.runners[name]["subject"],
            },
            "organization": self.name,
            "runner_name": name,
            "user_id": self.user_id,
            "uuid": s.uuid,
        }

    def helm_chart(self, name: str) -> bytes:
        """A ``.tgz`` chart holding the same values, as the docs claim the endpoint returns."""
        files = {
            "kubiya-runner/Chart.yaml": (
                "apiVersion: v2\nname: kubiya-runner\n"
                f"version: {self._secrets(name).version}\ntype: application\n"
            ),
            "kubiya-runner/values.yaml": json.dumps(self.helm_values(name), indent=2) + "\n",
        }
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            for path, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(path)
                info.size = len(data)
                info.mtime = 1_735_689_600
                tar.addfile(info, io.BytesIO(data))
        return gzip.compress(raw.getvalue(), mtime=0)

    def manifest(self, name: str) -> str:
        """Multi-document Kubernetes YAML deploying the runner (notes §3.8)."""
        s = self._secrets(name)
        runner = self.runners[name]
        ns = json.dumps(runner["namespace"] or runner["kubernetes_namespace"] or "kubiya")
        quoted = json.dumps(name)
        creds = (
            "-----BEGIN NATS USER JWT-----\n"
            f"{s.jwt}\n"
            "------END NATS USER JWT------\n\n"
            "-----BEGIN USER NKEY SEED-----\n"
            f"{s.nkey_seed}\n"
            "------END USER NKEY SEED------\n"
        )
        creds_block = "".join(f"    {line}\n" if line else "\n" for line in creds.splitlines())
        return (
            "---\n"
            "apiVersion: v1\n"
            "kind: Namespace\n"
            "metadata:\n"
            f"  name: {ns}\n"
            "---\n"
            "apiVersion: v1\n"
            "kind: Secret\n"
            "metadata:\n"
            "  name: kubiya-runner-nats-creds\n"
            f"  namespace: {ns}\n"
            "type: Opaque\n"
            "stringData:\n"
            "  nats.creds: |\n"
            f"{creds_block}"
            "---\n"
            "apiVersion: v1\n"
            "kind: ServiceAccount\n"
            "metadata:\n"
            "  name: kubiya-runner\n"
            f"  namespace: {ns}\n"
            "---\n"
            "apiVersion: apps/v1\n"
            "kind: Deployment\n"
            "metadata:\n"
            "  name: kubiya-operator\n"
            f"  namespace: {ns}\n"
            "  labels:\n"
            "    app.kubernetes.io/name: kubiya-operator\n"
            f"    kubiya.ai/runner: {quoted}\n"
            "spec:\n"
            "  replicas: 1\n"
            "  selector:\n"
            "    matchLabels:\n"
            "      app.kubernetes.io/name: kubiya-operator\n"
            "  template:\n"
            "    metadata:\n"
            "      labels:\n"
            "        app.kubernetes.io/name: kubiya-operator\n"
            "    spec:\n"
            "      serviceAccountName: kubiya-runner\n"
            "      containers:\n"
            "        - name: operator\n"
            f"          image: ghcr.io/kubiyabot/kubiya-operator:v{s.version}\n"
            "          env:\n"
            "            - name: KUBIYA_RUNNER_NAME\n"
            f"              value: {quoted}\n"
            "            - name: KUBIYA_RUNNER_UUID\n"
            f"              value: {json.dumps(s.uuid)}\n"
            "            - name: NATS_SUBJECT\n"
            f"              value: {json.dumps(runner['subject'])}\n"
            "          volumeMounts:\n"
            "            - name: nats-creds\n"
            "              mountPath: /etc/nats\n"
            "              readOnly: true\n"
            "      volumes:\n"
            "        - name: nats-creds\n"
            "          secret:\n"
            "            secretName: kubiya-runner-nats-creds\n"
        )


KUBIYA_ORG = web.RequestKey("runnerhub_sandbox_kubiya_org", KubiyaOrg)


class KubiyaService:
    """Routes, auth and limits of ``/api/v3/runners``."""

    vendor: Vendor = "kubiya"
    prefix = "/api/v3/"

    def __init__(
        self,
        orgs: dict[str, KubiyaOrg],
        settings: Settings,
        limits: tuple[tuple[int, float], ...],
        *,
        error_style: ErrorStyle = "code_error",
        helmchart_format: HelmchartFormat = "json",
    ) -> None:
        if not limits:
            raise ValueError("kubiya_limits needs at least one window")
        self._orgs = orgs
        self._settings = settings
        self._limits = [settings.scaled(*spec) for spec in limits]
        self._error_style = error_style
        self._helmchart_format = helmchart_format

    def routes(self) -> list[web.RouteDef]:
        base = "/api/v3/runners"
        # Fixed segments first: ``helm/x`` is a manifest, not runner "helm".
        return [
            web.get(base, self._list, name="kubiya.list_runners", allow_head=False),
            web.put(
                f"{base}/description/{{runner}}",
                self._describe_update,
                name="kubiya.update_description",
            ),
            web.get(
                f"{base}/helmchart/{{runner}}",
                self._helmchart,
                name="kubiya.get_helmchart",
                allow_head=False,
            ),
            web.get(
                f"{base}/helm/{{runner}}",
                self._manifest,
                name="kubiya.get_manifest",
                allow_head=False,
            ),
            web.get(
                f"{base}/{{runner}}/describe",
                self._describe,
                name="kubiya.describe_runner",
                allow_head=False,
            ),
            web.get(
                f"{base}/{{runner}}/health",
                self._health,
                name="kubiya.runner_health",
                allow_head=False,
            ),
            web.post(f"{base}/{{runner}}/ops", self._ops, name="kubiya.runner_ops"),
            web.post(f"{base}/{{runner}}", self._create, name="kubiya.create_runner"),
            web.delete(f"{base}/{{runner}}", self._delete, name="kubiya.delete_runner"),
        ]

    @staticmethod
    def _presented(request: web.Request) -> str | None:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, value = header.partition(" ")
        # Kubiya's own control plane sends both schemes with the same key (notes §1).
        if scheme.lower() in ("userkey", "bearer") and value.strip():
            return value.strip()
        return header

    def credential_id(self, request: web.Request) -> str:
        presented = self._presented(request)
        return "" if presented is None else credential_id(presented)

    def _authenticate(self, request: web.Request) -> KubiyaOrg | None:
        presented = self._presented(request)
        for org in self._orgs.values():
            if presented == org.api_key:
                return org
        return None

    def _org_for_key(self, segment: str) -> KubiyaOrg | None:
        key = segment.removesuffix(".yaml")
        for org in self._orgs.values():
            if org.runner_for_key(key) is not None:
                return org
        return None

    async def gate(
        self, request: web.Request, exchange: Exchange, handler: Handler
    ) -> web.StreamResponse:
        segment = request.match_info.get("runner", "")
        if exchange.operation == "get_manifest" and _KEY_SEGMENT.fullmatch(segment):
            # The manifest URL from create is a capability: ``kubectl apply -f`` sends no auth.
            keyed = self._org_for_key(segment)
            if keyed is None:
                return self.error(404, "manifest not found")
            exchange.org = keyed.name
            request[KUBIYA_ORG] = keyed
            return await handler(request)
        org = self._authenticate(request)
        if org is None:
            return self.error(401, "invalid or missing API key")
        exchange.org = org.name
        request[KUBIYA_ORG] = org
        wait = self._settings.limiter.acquire(
            ("kubiya", exchange.credential),
            self._limits,
            exchange.arrival,
            enforce=self._settings.enforce_limits,
        )
        if wait:
            response = self.error(429, "rate limit exceeded")
            response.headers.update(self._settings.retry_after_header(wait))
            return response
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return self.error(exc.status, exc.reason.lower())

    def error(self, status: int, message: str) -> web.Response:
        style = self._error_style
        if style == "html":
            return web.Response(status=status, text=html_page(status), content_type="text/html")
        body: dict[str, Any]
        if style == "code_error":
            body = {"code": status, "error": message}
        elif style == "nested":
            body = {"error": {"code": _ERROR_CODES.get(status, "error"), "message": message}}
        elif style == "message":
            body = {"message": message}
        else:
            body = {"detail": message}
        return web.json_response(body, status=status)

    def decorate(self, response: web.StreamResponse, exchange: Exchange) -> None:
        # Windows belong to a key; a keyless capability GET has none to report.
        if not exchange.credential:
            return
        windows = self._settings.limiter.windows(("kubiya", exchange.credential), self._limits)
        now = exchange.arrival
        main = windows[0]
        headers = response.headers
        headers["X-RateLimit-Limit"] = str(main.limit)
        headers["X-RateLimit-Remaining"] = str(main.remaining(now))
        headers["X-RateLimit-Reset"] = format_seconds(main.reset(now)) if main.count(now) else "0"
        if len(windows) > 1:
            burst = windows[1]
            headers["X-RateLimit-Burst-Limit"] = str(burst.limit)
            headers["X-RateLimit-Burst-Remaining"] = str(burst.remaining(now))

    def wrong_shape(self, operation: str) -> Any:
        if operation == "list_runners":
            return {"runners": "nope"}
        return [{"unexpected": True}]

    def unknown_enum(self, payload: Any) -> Any:
        if isinstance(payload, list):
            return [self.unknown_enum(item) for item in payload]
        if not isinstance(payload, dict):
            return payload
        if "runner_type" in payload:
            return {**payload, "runner_type": "quantum_operator"}
        if "checks" in payload:
            return {**payload, "status": "rebooting"}
        return payload

    def _runner(self, request: web.Request) -> tuple[KubiyaOrg, str]:
        org = request[KUBIYA_ORG]
        name = request.match_info["runner"]
        if name not in org.runners:
            raise web.HTTPNotFound(reason="runner not found")
        return org, name

    async def _list(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(list(request[KUBIYA_ORG].runners.values()))

    async def _describe(self, request: web.Request) -> web.StreamResponse:
        org, name = self._runner(request)
        return web.json_response(org.runners[name])

    async def _health(self, request: web.Request) -> web.StreamResponse:
        org, name = self._runner(request)
        if org.health.get(name) == "missing":
            return self.error(503, f"runner {name} is not reporting health")
        return web.json_response(org.health_report(name))

    async def _create(self, request: web.Request) -> web.StreamResponse:
        org = request[KUBIYA_ORG]
        name = request.match_info["runner"]
        if not _NAME.fullmatch(name):
            return self.error(400, "runner name must be 1-63 characters of a-z, 0-9 and '-'")
        body = await _json_body(request)
        if body is _INVALID:
            return self.error(400, "invalid request body")
        if name not in org.runners:
            fields = body if isinstance(body, dict) else {}
            extra = {
                key: fields[key]
                for key in ("managed_by", "task_id", "description")
                if isinstance(fields.get(key), str)
            }
            org.add_runner(name, health="missing", **extra)
        # Re-creating returns the same URL: ``kubiya runner manifest`` relies on it (notes §3.4).
        key = org.manifest_key(name)
        return web.json_response(
            {"url": f"{request.scheme}://{request.host}/api/v3/runners/helm/{key}.yaml"}
        )

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        org, name = self._runner(request)
        org.remove_runner(name)
        return web.Response(status=200)

    async def _describe_update(self, request: web.Request) -> web.StreamResponse:
        org, name = self._runner(request)
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("description"), str):
            return self.error(400, "description is required and must be a string")
        org.runners[name]["description"] = body["description"]
        return web.json_response(org.runners[name])

    async def _helmchart(self, request: web.Request) -> web.StreamResponse:
        org, name = self._runner(request)
        if self._helmchart_format == "tgz":
            return web.Response(
                body=org.helm_chart(name),
                content_type="application/gzip",
                headers={"Content-Disposition": f'attachment; filename="{name}.tgz"'},
            )
        return web.json_response(org.helm_values(name))

    async def _manifest(self, request: web.Request) -> web.StreamResponse:
        org = request[KUBIYA_ORG]
        segment = request.match_info["runner"]
        keyed = _KEY_SEGMENT.fullmatch(segment)
        name = org.runner_for_key(segment.removesuffix(".yaml")) if keyed else segment
        if name is None or name not in org.runners:
            return self.error(404, "runner not found")
        return web.Response(text=org.manifest(name), content_type="application/x-yaml")

    async def _ops(self, request: web.Request) -> web.StreamResponse:
        _, name = self._runner(request)
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("operation"), str):
            return self.error(400, "operation is required")
        operation = body["operation"]
        if operation not in OPERATIONS:
            return self.error(400, f"unsupported operation {operation!r}")
        if not isinstance(body.get("parameters", {}), dict):
            return self.error(400, "parameters must be an object")
        return web.json_response(
            {
                "operation": operation,
                "status": "success",
                "message": f"operation {operation} initiated for runner {name}",
                "timestamp": rfc3339(utcnow()),
            }
        )


_INVALID = object()


async def _json_body(request: web.Request) -> Any:
    """The parsed JSON body, ``None`` if empty, ``_INVALID`` if not JSON."""
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return _INVALID
