"""GitHub Actions runner scopes (org, repo, enterprise) and their runners, as wire objects.

Shapes follow ``github-runners-notes.md`` §3: a runner is ``{id, runner_group_id,
name, os, status, busy, ephemeral, labels}`` and a label ``{id, name, type}``
with ``type`` ``"read-only"`` (applied when the runner is configured) or
``"custom"``.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import attrs

Scope = Literal["org", "repo", "enterprise"]
SCOPES: tuple[Scope, ...] = ("org", "repo", "enterprise")

# Label names GitHub applies itself when a runner is configured (notes §2.2, §3).
READ_ONLY_LABELS = frozenset(
    {"self-hosted", "linux", "windows", "macos", "x64", "x86", "arm", "arm64"}
)
# Registration and remove tokens expire after one hour (notes §3, authentication-token).
TOKEN_LIFETIME = timedelta(hours=1)

_OS_LABEL = {"linux": "Linux", "macos": "macOS", "windows": "Windows"}
_CUSTOM_POOL = ("gpu", "docker", "large", "k8s", "build", "deploy", "arm-cache", "nightly")
_TOKEN_ALPHABET = string.ascii_uppercase + string.digits


def _pat(rng: random.Random) -> str:
    """A classic personal access token lookalike: ``ghp_`` and 36 alphanumerics."""
    return "ghp_" + "".join(rng.choices(string.ascii_letters + string.digits, k=36))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _b64json(value: object) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def expires_at(moment: datetime) -> str:
    """``moment`` as GitHub writes ``expires_at``: milliseconds and a numeric offset."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+00:00"


@attrs.frozen
class MintedToken:
    """A registration or remove token handed out by the sandbox."""

    kind: Literal["registration", "remove"]
    token: str = attrs.field(repr=False)
    expires_at: datetime


@attrs.define(eq=False)
class GitHubOrg:
    """One runner scope: an organization, a repository (``"owner/name"``) or an enterprise.

    ``runners`` maps runner id to its wire object, in list order; tests may edit
    it while serving. ``token`` may do everything; ``read_token`` may only read
    (mutations get 403). ``former_names`` answer with a redirect to ``name``.
    """

    name: str
    scope: Scope
    id: int
    token: str = attrs.field(repr=False)
    read_token: str = attrs.field(repr=False)
    runner_groups: tuple[int, ...] = (1,)
    rate_limit: int | None = None
    former_names: list[str] = attrs.field(factory=list)
    runners: dict[int, dict[str, Any]] = attrs.field(factory=dict, repr=False)
    minted: list[MintedToken] = attrs.field(factory=list, repr=False)
    jit_configs: dict[int, str] = attrs.field(factory=dict, repr=False)
    _rng: random.Random = attrs.field(factory=random.Random, repr=False)
    _next_id: int = attrs.field(default=1, repr=False)
    _label_ids: dict[str, int] = attrs.field(factory=dict, init=False, repr=False)
    _serial: int = attrs.field(default=0, init=False, repr=False)

    @classmethod
    def seeded(
        cls,
        name: str,
        seed: int,
        runners: int = 0,
        *,
        scope: Scope = "org",
        token: str | None = None,
        labels: Sequence[str] = _CUSTOM_POOL,
        runner_groups: Sequence[int] = (1,),
        rate_limit: int | None = None,
        former_names: Iterable[str] = (),
    ) -> GitHubOrg:
        """A scope whose tokens, ids and ``runners`` derive from ``seed``, ``scope`` and ``name``.

        Seeded runners cycle through a fixed pattern so that any 12 of them hold
        every kind: Linux, macOS and Windows; X64 and ARM64; online, offline
        and busy; ephemeral and not. Custom labels are drawn from ``labels``.
        """
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        owner, slash, repo = name.partition("/")
        if (scope == "repo") != bool(slash) or not owner or (slash and (not repo or "/" in repo)):
            raise ValueError(f"{scope} name {name!r}: a repo is 'owner/name', others have no '/'")
        if not runner_groups:
            raise ValueError("runner_groups must not be empty")
        rng = random.Random(f"github:{seed}:{scope}:{name.lower()}")
        # Drawn even when given, so runner data never depends on the token.
        drawn = _pat(rng)
        org = cls(
            name,
            scope,
            rng.randrange(1_000_000, 200_000_000),
            token or drawn,
            _pat(rng),
            runner_groups=tuple(runner_groups),
            rate_limit=rate_limit,
            former_names=list(former_names),
            rng=rng,
            next_id=rng.randrange(1_000, 1_000_000) * 10,
        )
        for _ in range(runners):
            org._seed_runner(tuple(labels))
        return org

    @property
    def short_name(self) -> str:
        """The last path segment of ``name``: the repo name for a repo scope."""
        return self.name.rpartition("/")[2]

    def matches(self, name: str) -> bool:
        """Whether ``name`` is this scope's current name, case-insensitively."""
        return name.lower() == self.name.lower()

    def was(self, name: str) -> bool:
        """Whether ``name`` is one of this scope's former names, case-insensitively."""
        return name.lower() in {former.lower() for former in self.former_names}

    def label(self, name: str, kind: Literal["read-only", "custom"]) -> dict[str, Any]:
        """A label object; one id per name (case-insensitive) in this scope."""
        key = name.lower()
        label_id = self._label_ids.get(key)
        if label_id is None:
            label_id = self._label_ids[key] = len(self._label_ids) + 1
        return {"id": label_id, "name": name, "type": kind}

    def labels_for(self, names: Iterable[str]) -> list[dict[str, Any]]:
        """Label objects for ``names``, typed by name, without case-insensitive duplicates."""
        seen: set[str] = set()
        labels = []
        for name in names:
            if name.lower() in seen:
                continue
            seen.add(name.lower())
            kind: Literal["read-only", "custom"] = (
                "read-only" if name.lower() in READ_ONLY_LABELS else "custom"
            )
            labels.append(self.label(name, kind))
        return labels

    def add_runner(
        self,
        name: str,
        *,
        os: str = "linux",
        arch: str = "X64",
        status: str = "online",
        busy: bool = False,
        ephemeral: bool = False,
        labels: Iterable[str] = (),
        runner_group_id: int | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """Add a configured runner with its read-only labels and custom ``labels``.

        ``overrides`` replace wire fields. Returns the stored wire object.
        """
        read_only = ["self-hosted", _OS_LABEL.get(os, os), arch]
        runner: dict[str, Any] = {"id": self._new_id()}
        if self.scope != "repo":
            # Repository runners belong to no group (notes §7).
            runner["runner_group_id"] = runner_group_id or self.runner_groups[0]
        runner.update(
            name=name,
            os=os,
            status=status,
            busy=busy,
            ephemeral=ephemeral,
            labels=[self.label(n, "read-only") for n in read_only]
            + [self.label(n, "custom") for n in labels],
        )
        runner.update(overrides)
        self.runners[runner["id"]] = runner
        return runner

    def remove_runner(self, runner_id: int) -> None:
        """Forget a runner, as if it had been removed; ``KeyError`` if unknown."""
        del self.runners[runner_id]
        self.jit_configs.pop(runner_id, None)

    def find(self, name: str) -> dict[str, Any] | None:
        """The runner called ``name`` (runner names are unique, case-insensitively)."""
        wanted = name.lower()
        return next((r for r in self.runners.values() if r["name"].lower() == wanted), None)

    def connect(self, runner_id: int, *, os: str = "linux", arch: str = "X64") -> dict[str, Any]:
        """Simulate the machine of a just-in-time runner starting: it comes online."""
        runner = self.runners[runner_id]
        runner.update(os=os, status="online")
        names = {label["name"].lower() for label in runner["labels"]}
        for extra in (_OS_LABEL.get(os, os), arch):
            if extra.lower() not in names:
                runner["labels"].append(self.label(extra, "read-only"))
        return runner

    def create_jit(
        self, name: str, labels: Sequence[str], runner_group_id: int, work_folder: str, url: str
    ) -> tuple[dict[str, Any], str]:
        """Register a just-in-time runner; returns it and its ``encoded_jit_config``."""
        runner: dict[str, Any] = {"id": self._new_id()}
        if self.scope != "repo":
            runner["runner_group_id"] = runner_group_id
        runner.update(
            name=name,
            os="unknown",
            status="offline",
            busy=False,
            ephemeral=True,
            labels=self.labels_for(labels),
        )
        self.runners[runner["id"]] = runner
        rng = self._rng
        # The shape of a real config: the files config.sh would write, each base64 JSON.
        files = {
            ".runner": _b64json(
                {
                    "AgentId": str(runner["id"]),
                    "AgentName": name,
                    "PoolId": str(runner_group_id),
                    "PoolName": "Default",
                    "Ephemeral": "true",
                    "ServerUrl": url,
                    "GitHubUrl": url,
                    "WorkFolder": work_folder,
                }
            ),
            ".credentials": _b64json(
                {
                    "Scheme": "OAuth",
                    "Data": {
                        "ClientId": f"{rng.getrandbits(128):032x}",
                        "AuthorizationUrl": f"{url}/_apis/oauth2/token",
                        "RequireFipsCryptography": "False",
                    },
                }
            ),
            ".credentials_rsaparams": _b64json(
                {part: _b64(rng.randbytes(64)) for part in ("d", "dp", "dq", "inverseQ", "p", "q")}
                | {"exponent": "AQAB", "modulus": _b64(rng.randbytes(128))}
            ),
        }
        config = _b64json(files)
        self.jit_configs[runner["id"]] = config
        return runner, config

    def mint(self, kind: Literal["registration", "remove"], now: datetime) -> MintedToken:
        """A new registration or remove token valid for one hour from ``now``."""
        token = "A" + "".join(self._rng.choices(_TOKEN_ALPHABET, k=28))
        minted = MintedToken(kind, token, now + TOKEN_LIFETIME)
        self.minted.append(minted)
        return minted

    def _new_id(self) -> int:
        runner_id = self._next_id
        self._next_id += 1
        return runner_id

    def _seed_runner(self, pool: tuple[str, ...]) -> None:
        rng = self._rng
        self._serial += 1
        n = self._serial
        os = "windows" if n % 6 == 5 else "macos" if n % 6 == 4 else "linux"
        arch = "ARM64" if n % 4 == 2 else "X64"
        # One in four is busy, one in six (never a busy one) offline.
        busy = n % 4 == 1
        status = "offline" if not busy and n % 6 == 3 else "online"
        custom = rng.sample(pool, k=min(len(pool), n % 3)) if pool else []
        self.add_runner(
            f"{self.short_name}-{os}-{n:03d}",
            os=os,
            arch=arch,
            status=status,
            busy=busy,
            ephemeral=n % 12 == 7,
            labels=custom,
            runner_group_id=self.runner_groups[n % len(self.runner_groups)],
        )
