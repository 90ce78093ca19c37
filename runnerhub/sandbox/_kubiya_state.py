"""Kubiya orgs: API keys, runners, health and the documents a runner's deployment needs.

Wire shapes are those ``kubiya-runners-notes.md`` confirms from Kubiya's own
clients; ``_kubiya.py`` serves them.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import random
import string
import tarfile
import uuid
from typing import Any, Literal

import attrs

from ._common import rfc3339, utcnow

HealthState = Literal["ok", "degraded", "non-responsive", "missing"]

_UNHEALTHY: tuple[HealthState, ...] = ("degraded", "non-responsive", "missing")
_RUNNER_VERSIONS = ("0.18.3", "0.18.3", "0.18.3", "0.17.9", "0.16.2")
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
