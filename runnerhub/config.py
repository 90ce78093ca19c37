"""The accounts file: one TOML table per account, secrets by reference only.

Example::

    [defaults]                      # optional; applies to every account
    timeout = 30
    limiter = "redis://localhost:6379/0"   # optional: limits shared across processes

    [accounts.soda-eu]
    provider = "soda"
    region = "eu"
    api_key_id_env = "SODA_EU_KEY_ID"           # a credential from an environment variable
    api_key_secret_env = "SODA_EU_KEY_SECRET"

    [accounts.soda-us]
    provider = "soda"
    region = "us"
    api_key_id = "6c1d0d61-us"                  # key ids are not secret: inline is fine
    api_key_secret_file = "/run/secrets/soda-us"  # or from a file (whitespace trimmed)

    [accounts.kubiya-prod]
    provider = "kubiya"
    api_key_env = "KUBIYA_PROD_KEY"
    [accounts.kubiya-prod.rate_limits]
    "*" = [{max_requests = 100, period_seconds = 60}, {max_requests = 20, period_seconds = 10}]

The table name is the account label. A top-level ``env_file = "NAME"`` names a
file beside the accounts file holding ``VAR=value`` lines (as ``runnerhub
sandbox --write-config`` writes): ``*_env`` variables not set in the
environment are read from it. The keys an account may have come from
the vendor registry (``runnerhub.vendors``): ``provider``; each of the
provider class's ``credentials`` as ``<name>``, ``<name>_env`` or
``<name>_file``; its vendor ``options`` (Soda's ``region``); the scalar
client options (``base_url``, ``timeout``, ``deadline``, ``max_retries``,
``max_response_bytes``, ``connector_limit``, ``allow_insecure_http``, taken
from :class:`runnerhub._http.ClientOptions`); ``rate_limits``; ``limiter``.
The accounts share one connection pool (:class:`runnerhub.SessionPool`), so a
``connector_limit``, which sizes a provider's own session, is refused.

A secret written inline is refused, not warned about: accounts files end up in
repositories and tickets, and a refusal is the only way to be sure. Unknown
keys and wrong types are refused too, with the path of the offending key, so
a typo never silently drops a setting. Those are mistakes in the file and
fail the whole file. A credential that cannot be read *now* (an environment
variable not set, a secret file missing or empty) fails only its account: it
is loaded as an account whose every call raises :class:`AccountUnavailable`,
so the others still work and inventories report it as failed.
"""

from __future__ import annotations

import functools
import os
import shlex
import tomllib
import types
import typing
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn, Self

import attrs
import cattrs

from . import errors
from ._http import ClientOptions, SessionOption, check_base_url
from ._pool import SessionPool
from .fleet import RunnerHub
from .limits import Limiter, RateLimit
from .models import CreatedRunner, Runner, RunnerHealth
from .provider import Capability, RunnerProvider
from .vendors import VENDORS, provider_class, vendor_names

__all__ = [
    "Account",
    "AccountUnavailable",
    "Accounts",
    "accounts_from_env",
    "environment_variables",
    "load_accounts",
    "load_hub",
]

# Set to 1/true/yes, it allows plain http to a non-loopback host for every account.
INSECURE_ENV: Final = "RUNNERHUB_ALLOW_INSECURE_HTTP"
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_SCALARS: Final = (str, int, float, bool)
_SUFFIXES: Final = ("", "_env", "_file")


class AccountUnavailable(errors.UsageError):
    """An account of the accounts file whose credentials cannot be read.

    Raised by every call on that account; the message names the environment
    variable or file, and ``account`` is its label.
    """


@attrs.frozen
class Account:
    """One account as configured, whether or not it can be used.

    Attributes:
        label: The account label (the table name, or the provider's default).
        vendor: The vendor name, e.g. ``"soda"``.
        provider: A working provider, or one failing every call with ``error``.
        location: Where it points, as ``(key, value)`` pairs: ``base_url`` and
            vendor options such as ``region``; empty for the vendor's default.
        credentials: For each credential given, where it comes from:
            ``"env NAME"``, ``"file PATH"`` or ``"inline"``; never the value.
        error: Why the account cannot be used, when it cannot.
    """

    label: str
    vendor: str
    provider: RunnerProvider
    location: tuple[tuple[str, str], ...] = ()
    credentials: tuple[tuple[str, str], ...] = ()
    error: AccountUnavailable | None = None


@attrs.frozen
class Accounts:
    """The accounts of one source (a file, or the environment) and the limiters they share.

    Attributes:
        source: The file's path, or ``"environment"``.
        accounts: In the file's order.
        limiters: Shared limiters (``limiter = "redis://..."``), owned by the hub.
        pool: The connection pool the accounts share, owned by the hub.
    """

    source: str
    accounts: tuple[Account, ...]
    limiters: tuple[Limiter, ...] = ()
    pool: SessionPool | None = None

    def hub(self) -> RunnerHub:
        """A hub of every account; it owns the limiters and the pool and closes them."""
        return RunnerHub(
            [a.provider for a in self.accounts], limiters=self.limiters, pool=self.pool
        )


class _Unavailable:
    """The stand-in provider of an account whose credentials cannot be read.

    It satisfies :class:`RunnerProvider`, offers no capability, sends nothing,
    and raises its :class:`AccountUnavailable` from every operation.
    """

    capabilities: frozenset[Capability] = frozenset()

    def __init__(self, vendor: str, error: AccountUnavailable) -> None:
        self.provider = vendor
        self.account = error.account or vendor
        self._error = error

    def __repr__(self) -> str:
        return f"<unavailable account={self.account!r} provider={self.provider!r}>"

    def _fail(self, operation: str) -> NoReturn:
        error = self._error
        raise AccountUnavailable(
            error.message, provider=self.provider, account=self.account, operation=operation
        )

    def list_runners(self) -> AsyncIterator[Runner]:
        return _Failing(self, "list_runners")

    async def get_runner(self, runner_id: str) -> Runner:
        self._fail("get_runner")

    async def create_runner(self, name: str | None = None) -> CreatedRunner:
        self._fail("create_runner")

    async def delete_runner(self, runner_id: str) -> None:
        self._fail("delete_runner")

    async def runner_health(self, runner_id: str) -> RunnerHealth:
        self._fail("runner_health")

    async def update_description(self, runner_id: str, description: str) -> Any:
        self._fail("update_description")

    async def deployment_manifest(self, runner_id: str) -> str:
        self._fail("deployment_manifest")

    async def helm_values(self, runner_id: str) -> Mapping[str, Any] | bytes:
        self._fail("helm_values")

    async def run_operation(
        self, runner_id: str, operation: str, parameters: Mapping[str, Any] | None = None
    ) -> Any:
        self._fail("run_operation")

    async def verify(self) -> None:
        self._fail("verify")

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class _EnvFile(Mapping[str, str]):
    """The environment, then the ``NAME=value`` lines of the file ``env_file`` names.

    The process environment wins. Lines are shell-quoted (``export`` and ``#``
    comments allowed), so the same file can be sourced by a shell. An
    unreadable file adds nothing; the missing variable's message says where it
    was looked for.
    """

    def __init__(self, path: Path, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._values: dict[str, str] = {}
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            self.where = f" (nor read from {path.name}: {exc.strerror})"
            return
        self.where = f" (nor in {path.name})"
        for line in text.splitlines():
            try:
                words = shlex.split(line, comments=True)
            except ValueError:  # unbalanced quotes: not a NAME=value line
                continue
            if words and words[0] == "export":
                words = words[1:]
            if len(words) == 1 and "=" in words[0]:
                name, _, value = words[0].partition("=")
                self._values[name] = value

    def __getitem__(self, name: str) -> str:
        if name in self._environ:
            return self._environ[name]
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter({**self._values, **self._environ})

    def __len__(self) -> int:
        return len({**self._values, **self._environ})


@attrs.frozen
class _Failing:
    # An async iterator whose first step raises the account's error.
    account: _Unavailable
    operation: str

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Runner:
        self.account._fail(self.operation)


# -- the schema: the scalar client options, declared once in ClientOptions -----------------


@attrs.frozen
class _Window:
    max_requests: int
    period_seconds: float


def _is_scalar(hint: Any) -> bool:
    if hint in _SCALARS:
        return True
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return all(arg in _SCALARS or arg is type(None) for arg in typing.get_args(hint))
    return False


@functools.cache
def _client_options() -> Mapping[str, Any]:
    # Every ClientOptions keyword a file can hold: the scalar ones (session, limiter,
    # retry and hooks are objects). ``account`` is the table's name, not a key.
    try:
        hints = typing.get_type_hints(ClientOptions)
    except NameError:
        # An annotation imported only for type checkers: read the scalar ones from
        # their text, which is all a file can hold anyway.
        scalars = {kind.__name__: kind for kind in _SCALARS}
        hints = {}
        for name, text in ClientOptions.__annotations__.items():
            source = text.__forward_arg__ if isinstance(text, typing.ForwardRef) else str(text)
            kind, _, rest = source.partition(" | ")
            if kind in scalars and rest in ("", "None"):
                hints[name] = scalars[kind] | None if rest else scalars[kind]
    return {name: hint for name, hint in hints.items() if name != "account" and _is_scalar(hint)}


def _strict(kind: type[Any]) -> Any:
    # cattrs would turn 1 into "1" and "30" into 30.0; a file must say what it means.
    accepted: tuple[type[Any], ...] = (int, float) if kind is float else (kind,)

    def structure(value: Any, _: Any) -> Any:
        if isinstance(value, bool) is not (kind is bool) or not isinstance(value, accepted):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return kind(value)

    return structure


@functools.cache
def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    for kind in _SCALARS:
        converter.register_structure_hook(kind, _strict(kind))
    windows = converter.get_structure_hook(list[_Window])

    def one_or_more(value: Any, hint: Any) -> Any:
        # ``op = {max_requests = 1, ...}`` is one window; a list is several.
        return windows(value if isinstance(value, list) else [value], hint)

    converter.register_structure_hook_func(lambda hint: hint == list[_Window], one_or_more)
    return converter


@functools.cache
def _schema(vendor: str) -> type[Any]:
    """The attrs class one account table of ``vendor`` must structure into."""
    cls = provider_class(vendor)
    fields: dict[str, Any] = {"provider": attrs.field(type=str)}
    optional: dict[str, Any] = dict(_client_options())
    optional |= {option.name: str for option in cls.options}
    optional |= {f"{c.name}{suffix}": str for c in cls.credentials for suffix in _SUFFIXES}
    optional |= {"limiter": str, "rate_limits": dict[str, list[_Window]]}
    for name, hint in optional.items():
        fields[name] = attrs.field(type=hint | None, default=None)
    return attrs.make_class(f"{vendor}_account", fields, frozen=True, slots=True)


# -- reading --------------------------------------------------------------------------------


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise errors.UsageError(f"accounts file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise errors.UsageError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise errors.UsageError(f"{path}: cannot read: {exc.strerror}") from None


def _structure(path: Path, label: str, table: Mapping[str, Any]) -> Any:
    where = f"accounts.{label}"
    vendor = table.get("provider")
    if not isinstance(vendor, str) or vendor not in VENDORS:
        raise errors.UsageError(
            f"{path.name}: {where}.provider must be one of {', '.join(vendor_names())}, "
            f"got {vendor!r}"
        )
    try:
        return _converter().structure(dict(table), _schema(vendor))
    except cattrs.BaseValidationError as exc:
        problems = "; ".join(cattrs.transform_error(exc, path=where))
        raise errors.UsageError(f"{path.name}: {problems}") from None


class _Credentials:
    """Resolves one account's credentials; the first one missing makes it unavailable."""

    def __init__(self, label: str, environ: Mapping[str, str], base: Path) -> None:
        self.label = label
        self.environ = environ
        self.base = base
        self.sources: list[tuple[str, str]] = []
        self.missing: str | None = None

    def resolve(self, where: str, name: str, secret: bool, forms: Mapping[str, str]) -> str | None:
        if len(forms) > 1:
            raise errors.UsageError(f"{where}: give {name} one way only, not {', '.join(forms)}")
        if not forms:
            return None
        ((form, value),) = forms.items()
        if not value:
            raise errors.UsageError(f"{where}.{form} must not be empty")
        if form == name:
            if secret:
                raise errors.UsageError(
                    f"{where}.{name} is a secret and may not be written in the file; "
                    f"use {name}_env (an environment variable name) or {name}_file (a path)"
                )
            self.sources.append((name, "inline"))
            return value
        if form.endswith("_env"):
            self.sources.append((name, f"env {value}"))
            found = self.environ.get(value)
            if not found:
                also = self.environ.where if isinstance(self.environ, _EnvFile) else ""
                self._missing(f"environment variable {value} ({name}) is not set{also}")
            return found
        self.sources.append((name, f"file {value}"))
        try:
            found = (self.base / value).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            self._missing(f"cannot read {name}_file {value}: {exc.strerror}")
            return None
        if not found:
            self._missing(f"{name}_file {value} is empty")
        return found or None

    def _missing(self, message: str) -> None:
        if self.missing is None:
            self.missing = message


def _insecure_message(base_url: str) -> str | None:
    # The core refuses plain http to a non-loopback host; say how to allow it in CLI
    # terms (the accounts-file key, the environment variable) rather than in Python's.
    try:
        check_base_url(base_url, allow_insecure_http=False)
    except errors.UsageError:
        try:
            check_base_url(base_url, allow_insecure_http=True)
        except errors.UsageError:
            return None
        return (
            f"refusing plain http to {base_url}: credentials would travel unencrypted; "
            f"use https, or set allow_insecure_http = true in the account "
            f"(or {INSECURE_ENV}=1)"
        )
    return None


def _allow_insecure(options: dict[str, Any], environ: Mapping[str, str]) -> None:
    if options.get("allow_insecure_http") is None and environ.get(INSECURE_ENV, "") in _TRUE:
        options["allow_insecure_http"] = True


def _rate_limits(where: str, table: Mapping[str, list[_Window]]) -> dict[str, Any]:
    limits: dict[str, tuple[RateLimit, ...]] = {}
    for operation, windows in table.items():
        try:
            limits[operation] = tuple(RateLimit(w.max_requests, w.period_seconds) for w in windows)
        except ValueError as exc:
            raise errors.UsageError(f"{where}.rate_limits.{operation}: {exc}") from None
    return limits


def _location(options: Mapping[str, Any], names: Sequence[str]) -> tuple[tuple[str, str], ...]:
    return tuple((name, str(options[name])) for name in names if options.get(name) is not None)


def load_accounts(
    path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    hooks: Any = None,
    session: SessionOption | None = None,
) -> Accounts:
    """Read an accounts file; accounts whose credentials cannot be read load as unavailable.

    Args:
        path: The TOML file.
        environ: Where ``*_env`` names are looked up (default ``os.environ``).
        hooks: Request hooks handed to every provider (``ClientOptions["hooks"]``).
        session: Handed to every provider (``ClientOptions["session"]``). By
            default the accounts share a new :class:`~runnerhub.SessionPool`,
            which the hub owns; a session given here stays the caller's.

    Raises:
        UsageError: for anything wrong in the file itself; the message gives the
            path of the key (``accounts.soda-eu.timeout``).
    """
    path = Path(path)
    env = os.environ if environ is None else environ
    document = _read(path)
    unknown = sorted(set(document) - {"defaults", "accounts", "env_file"})
    if unknown:
        raise errors.UsageError(f"{path.name}: unknown top-level keys: {', '.join(unknown)}")
    defaults = document.get("defaults", {})
    tables = document.get("accounts")
    if not isinstance(defaults, dict):
        raise errors.UsageError(f"{path.name}: defaults must be a table")
    if not isinstance(tables, dict) or not tables:
        raise errors.UsageError(f"{path.name}: no [accounts.<label>] tables")
    env_file = document.get("env_file")
    if env_file is not None:
        if not isinstance(env_file, str) or not env_file:
            raise errors.UsageError(f"{path.name}: env_file must be a file name")
        env = _EnvFile(path.parent / env_file, env)
    limiters: dict[str, Limiter] = {}
    accounts: list[Account] = []
    pool = None
    if session is None:
        session = pool = SessionPool()
    load = _Load(env, hooks, limiters, session)
    # A refused file leaves no connection behind: limiters and the pool connect on first use.
    for label, raw in tables.items():
        if not isinstance(raw, dict):
            raise errors.UsageError(f"{path.name}: accounts.{label} must be a table")
        accounts.append(_account(path, label, {**defaults, **raw}, load))
    return Accounts(str(path), tuple(accounts), tuple(limiters.values()), pool)


@attrs.frozen
class _Load:
    # What every account of one file shares while it is read.
    environ: Mapping[str, str]
    hooks: Any
    limiters: dict[str, Limiter]
    session: SessionOption


def _account(path: Path, label: str, table: Mapping[str, Any], load: _Load) -> Account:
    where = f"{path.name}: accounts.{label}"
    env, hooks, limiters = load.environ, load.hooks, load.limiters
    parsed = _structure(path, label, table)
    vendor: str = parsed.provider
    cls = provider_class(vendor)
    values = attrs.asdict(parsed, recurse=False)
    names = [*_client_options(), *(option.name for option in cls.options)]
    kwargs: dict[str, Any] = {name: values[name] for name in names if values[name] is not None}
    for option in cls.options:
        if option.choices and option.name in kwargs and kwargs[option.name] not in option.choices:
            raise errors.UsageError(
                f"{where}.{option.name} must be one of {', '.join(option.choices)}, "
                f"got {kwargs[option.name]!r}"
            )
    _allow_insecure(kwargs, env)
    if "base_url" in kwargs and not kwargs.get("allow_insecure_http"):
        message = _insecure_message(kwargs["base_url"])
        if message:
            raise errors.UsageError(f"{where}: {message}")
    location = _location(kwargs, ["base_url", *(option.name for option in cls.options)])
    credentials = _Credentials(label, env, path.parent)
    for field in cls.credentials:
        forms = {
            f"{field.name}{suffix}": values[f"{field.name}{suffix}"]
            for suffix in _SUFFIXES
            if values[f"{field.name}{suffix}"] is not None
        }
        value = credentials.resolve(where, field.name, field.secret, forms)
        if value is not None:
            kwargs[field.name] = value
    if parsed.rate_limits is not None:
        kwargs["rate_limits"] = _rate_limits(where, parsed.rate_limits)
    if parsed.limiter is not None:
        kwargs["limiter"] = _limiter(where, parsed.limiter, limiters)
    if hooks is not None:
        kwargs["hooks"] = hooks
    kwargs["session"] = load.session
    sources = tuple(credentials.sources)
    if credentials.missing is not None:
        error = AccountUnavailable(credentials.missing, provider=vendor, account=label)
        return Account(label, vendor, _Unavailable(vendor, error), location, sources, error)
    try:
        provider = cls(account=label, **kwargs)
    except errors.UsageError as exc:
        raise errors.UsageError(f"{where}: {exc.message}") from None
    return Account(label, vendor, provider, location, sources)


def _limiter(where: str, url: str, limiters: dict[str, Limiter]) -> Limiter:
    if not url.startswith(("redis://", "rediss://")):
        raise errors.UsageError(f"{where}.limiter must be a redis:// URL")
    if url not in limiters:
        from .limits import RedisLimiter  # noqa: PLC0415 - optional dependency

        limiters[url] = RedisLimiter.from_url(url)
    return limiters[url]


def load_hub(
    path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    hooks: Any = None,
    session: SessionOption | None = None,
) -> RunnerHub:
    """Read an accounts file and build a :class:`RunnerHub` of its accounts.

    An account whose credentials cannot be read is in the hub all the same;
    its calls raise :class:`AccountUnavailable` and inventories list it as failed.

    Args:
        path: The TOML file.
        environ: Where ``*_env`` names are looked up (default ``os.environ``).
        hooks: Request hooks handed to every provider.
        session: Handed to every provider; by default they share a
            :class:`~runnerhub.SessionPool` that the hub closes.

    Raises:
        UsageError: for anything wrong in the file itself; the message names the key.
    """
    return load_accounts(path, environ=environ, hooks=hooks, session=session).hub()


def accounts_from_env(environ: Mapping[str, str] | None = None, *, hooks: Any = None) -> Accounts:
    """One account per vendor whose credential variables are set (``SODA_*``, ...).

    The variables are each provider class's ``credentials[].env`` and
    ``options[].env``; ``from_env()`` reads them. A vendor whose variables are
    set but incomplete loads as unavailable, naming what is missing.
    """
    env = os.environ if environ is None else environ
    accounts: list[Account] = []
    for vendor in vendor_names():
        cls = provider_class(vendor)
        given = [c for c in cls.credentials if env.get(c.env)]
        if not given:
            continue
        options: dict[str, Any] = {} if hooks is None else {"hooks": hooks}
        _allow_insecure(options, env)
        sources = tuple((c.name, f"env {c.env}") for c in given)
        location = tuple(
            (option.name, env[option.env])
            for option in cls.options
            if option.env and env.get(option.env)
        )
        try:
            provider = cls.from_env(env, **options)
        except errors.UsageError as exc:
            message = exc.message
            if "allow_insecure_http" in message:
                message = f"{message.split(';')[0]}; set {INSECURE_ENV}=1 to allow it"
            error = AccountUnavailable(
                f"{cls.title} from the environment: {message}", provider=vendor, account=vendor
            )
            accounts.append(
                Account(vendor, vendor, _Unavailable(vendor, error), location, sources, error)
            )
            continue
        accounts.append(Account(provider.account, vendor, provider, location, sources))
    return Accounts("environment", tuple(accounts))


def environment_variables() -> tuple[str, ...]:
    """Every credential variable of every vendor, for messages."""
    return tuple(c.env for vendor in vendor_names() for c in provider_class(vendor).credentials)
