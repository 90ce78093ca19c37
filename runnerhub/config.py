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

The table name is the account label. An inline secret (``api_key_secret``,
``token``, ``api_key``) is refused, not warned about: accounts files end up in
repositories and tickets, and a refusal is the only way to be sure. Unknown
keys are refused too, so a typo never silently drops a setting.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import errors
from .fleet import RunnerHub
from .limits import Limiter, RateLimit
from .vendors import VENDORS, provider_class

__all__ = ["load_hub"]

_OPTIONS = {
    "base_url": str,
    "timeout": (int, float),
    "deadline": (int, float),
    "max_retries": int,
    "max_response_bytes": int,
    "connector_limit": int,
    "allow_insecure_http": bool,
}
_VENDOR_OPTIONS = {"soda": {"region": str}}


def _fail(where: str, message: str) -> errors.UsageError:
    return errors.UsageError(f"{where}: {message}")


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


def _credential(
    where: str,
    table: Mapping[str, Any],
    field: str,
    *,
    secret: bool,
    environ: Mapping[str, str],
    base: Path,
) -> str | None:
    forms = [k for k in (field, f"{field}_env", f"{field}_file") if k in table]
    if len(forms) > 1:
        raise _fail(where, f"give {field} one way only, not {forms}")
    if not forms:
        return None
    form = forms[0]
    value = table[form]
    if not isinstance(value, str) or not value:
        raise _fail(where, f"{form} must be a non-empty string")
    if form == field:
        if secret:
            raise _fail(
                where,
                f"{field} is a secret and may not be written in the file; "
                f"use {field}_env (an environment variable name) or {field}_file (a path)",
            )
        return value
    if form.endswith("_env"):
        found = environ.get(value)
        if not found:
            raise _fail(where, f"environment variable {value} (for {field}) is not set")
        return found
    secret_path = (base / value).expanduser()
    try:
        found = secret_path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise _fail(where, f"cannot read {field}_file {value}: {exc.strerror}") from None
    if not found:
        raise _fail(where, f"{field}_file {value} is empty")
    return found


def _rate_limits(where: str, table: Any) -> dict[str, tuple[RateLimit, ...]]:
    if not isinstance(table, dict):
        raise _fail(where, "rate_limits must be a table")
    limits: dict[str, tuple[RateLimit, ...]] = {}
    for operation, value in table.items():
        items = value if isinstance(value, list) else [value]
        try:
            limits[operation] = tuple(
                RateLimit(int(item["max_requests"]), float(item["period_seconds"]))
                for item in items
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(
                where, f"rate_limits.{operation} needs max_requests and period_seconds ({exc})"
            ) from None
    return limits


def _options(where: str, table: Mapping[str, Any], allowed: Mapping[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, kind in allowed.items():
        if key in table:
            value = table[key]
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise _fail(where, f"{key} has the wrong type")
            options[key] = table[key]
    return options


def load_hub(path: str | Path, *, environ: Mapping[str, str] | None = None) -> RunnerHub:
    """Read an accounts file and build a :class:`RunnerHub` of its accounts.

    Args:
        path: The TOML file.
        environ: Where ``*_env`` names are looked up (default ``os.environ``).

    Raises:
        UsageError: for anything wrong in the file; the message names the account.
    """
    path = Path(path)
    env = os.environ if environ is None else environ
    document = _read(path)
    unknown = set(document) - {"defaults", "accounts"}
    if unknown:
        raise _fail(str(path), f"unknown top-level keys {sorted(unknown)}")
    defaults = document.get("defaults", {})
    accounts = document.get("accounts")
    if not isinstance(accounts, dict) or not accounts:
        raise _fail(str(path), "no [accounts.<label>] tables")
    limiters: dict[str, Limiter] = {}
    providers = []
    # A refused file leaves no connection behind: limiters connect on first use.
    for label, raw_table in accounts.items():
        where = f"{path.name}: account {label!r}"
        if not isinstance(raw_table, dict):
            raise _fail(where, "must be a table")
        table = {**defaults, **raw_table}
        vendor = table.get("provider")
        if not isinstance(vendor, str) or vendor not in VENDORS:
            raise _fail(where, f"provider must be one of {sorted(VENDORS)}, got {vendor!r}")
        cls = provider_class(vendor)
        fields: Mapping[str, bool] = cls.credential_fields
        allowed = {**_OPTIONS, **_VENDOR_OPTIONS.get(vendor, {})}
        known = {"provider", "limiter", "rate_limits", *allowed}
        known |= {f"{f}{suffix}" for f in fields for suffix in ("", "_env", "_file")}
        extra = set(table) - known
        if extra:
            raise _fail(where, f"unknown keys {sorted(extra)}")
        kwargs = _options(where, table, allowed)
        for field, secret in fields.items():
            value = _credential(
                where, table, field, secret=secret, environ=env, base=path.parent
            )
            if value is not None:
                kwargs[field] = value
        if "rate_limits" in table:
            kwargs["rate_limits"] = _rate_limits(where, table["rate_limits"])
        if "limiter" in table:
            url = table["limiter"]
            if not isinstance(url, str) or not url.startswith(("redis://", "rediss://")):
                raise _fail(where, "limiter must be a redis:// URL")
            if url not in limiters:
                from .limits import RedisLimiter  # noqa: PLC0415 - optional dependency

                limiters[url] = RedisLimiter.from_url(url)
            kwargs["limiter"] = limiters[url]
        try:
            providers.append(cls(account=label, **kwargs))
        except errors.UsageError as exc:
            raise _fail(where, exc.message) from None
    return RunnerHub(providers, limiters=list(limiters.values()))
