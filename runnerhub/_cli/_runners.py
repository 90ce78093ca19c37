"""Commands on one runner: get, describe, health, create, delete, and the capability ones.

A runner is named ``ACCOUNT/ID``, or by its id alone: under ``--account``, in
the only account, or looked up in every account (see ``_common.locate``).
Commands a vendor may lack check the provider against its capability protocol
first and say which account lacks it, before any request.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from .. import errors
from .._serialize import error_to_json, health_to_json, runner_to_json
from ..fleet import RunnerHub
from ..models import HealthCheck
from ..provider import (
    Capability,
    RunnerProvider,
    SupportsDescription,
    SupportsHealth,
    SupportsManifests,
    SupportsOperations,
)
from ..vendors import provider_class
from ._common import (
    Context,
    ExitCode,
    error_text,
    lacking,
    not_found,
    on_runner,
    one_account,
    resolve,
    select,
    with_hub,
)
from ._mask import mask
from ._output import RUNNER_HEADERS, Output, ago, columns, runner_row, runner_version

__all__ = [
    "cmd_create",
    "cmd_delete",
    "cmd_describe",
    "cmd_get",
    "cmd_health",
    "cmd_helm_values",
    "cmd_manifest",
    "cmd_op",
    "cmd_set_description",
]

_CHECK_HEADERS: Final = ("CHECK", "STATUS", "VERSION", "ERROR")


def _fields(out: Output, pairs: Sequence[tuple[str, str]], indent: str = "") -> None:
    width = max((len(label) for label, _ in pairs), default=0) + 1
    for label, value in pairs:
        out.line(f"{indent}{(label + ':').ljust(width)}  {value}")


def _when(value: datetime | None) -> str:
    return "-" if value is None else f"{value.isoformat()} ({ago(value)})"


def _checks(out: Output, checks: Sequence[HealthCheck], indent: str = "") -> None:
    if not checks:
        return
    rows = [
        [c.name, c.status.value, c.version or "-", " ".join((c.error or "-").split())]
        for c in checks
    ]
    for text in columns(_CHECK_HEADERS, rows):
        out.line(indent + text)


def _has_health_check(provider: RunnerProvider) -> bool:
    return isinstance(provider, SupportsHealth) and Capability.HEALTH_CHECK in provider.capabilities


def cmd_get(ctx: Context) -> int:
    """One runner as a table row or JSON."""

    async def body(provider: RunnerProvider, runner_id: str) -> int:
        runner = await provider.get_runner(runner_id)
        if ctx.output == "json":
            ctx.out.json(runner_to_json(runner))
        else:
            ctx.out.table(RUNNER_HEADERS, [runner_row(runner, datetime.now(UTC))], status_column=4)
        return ExitCode.OK

    return on_runner(ctx, body)


def cmd_describe(ctx: Context) -> int:
    """Every field of one runner, its versions, and its health where the vendor has a check."""

    async def body(provider: RunnerProvider, runner_id: str) -> int:
        runner = await provider.get_runner(runner_id)
        health = None
        health_error: errors.RunnerHubError | None = None
        if _has_health_check(provider):
            assert isinstance(provider, SupportsHealth)  # noqa: S101 - checked just above
            try:
                health = await provider.runner_health(runner.id)
            except errors.RunnerHubError as exc:
                health_error = exc
        out = ctx.out
        if ctx.output == "json":
            out.json(
                {
                    "runner": runner_to_json(runner),
                    "health": None if health is None else health_to_json(health),
                    "health_error": None if health_error is None else error_to_json(health_error),
                }
            )
            return ExitCode.OK
        _fields(
            out,
            [
                ("Account", runner.account),
                ("Provider", runner.provider),
                ("ID", runner.id),
                ("Name", runner.name),
                ("Kind", runner.kind.value),
                ("Status", runner.status.value),
                ("Version", runner_version(runner)),
                ("Last seen", _when(runner.last_seen)),
                ("Description", runner.description or "-"),
            ],
        )
        out.line("Versions:" + ("" if runner.versions else "    -"))
        _fields(out, sorted(runner.versions.items()), indent="  ")
        if health is not None:
            out.line("Health:")
            _fields(
                out,
                [("Status", health.status.value), ("Checked", _when(health.checked_at))],
                indent="  ",
            )
            _checks(out, health.checks, indent="  ")
        elif health_error is not None:
            out.line(f"Health:       unavailable ({error_text(health_error)})")
        return ExitCode.OK

    return on_runner(ctx, body)


def cmd_health(ctx: Context) -> int:
    """One runner's health: overall status and, where the vendor has them, its checks."""

    async def body(provider: RunnerProvider, runner_id: str) -> int:
        if (
            not isinstance(provider, SupportsHealth)
            or Capability.HEALTH not in provider.capabilities
        ):
            raise lacking(provider, "health")
        health = await provider.runner_health(runner_id)
        if ctx.output == "json":
            ctx.out.json({"account": provider.account, "id": runner_id, **health_to_json(health)})
            return ExitCode.OK
        _fields(
            ctx.out,
            [
                ("Runner", f"{runner_id} ({provider.account})"),
                ("Status", health.status.value),
                ("Checked", _when(health.checked_at)),
            ],
        )
        if health.checks:
            ctx.out.line()
            _checks(ctx.out, health.checks)
        return ExitCode.OK

    return on_runner(ctx, body)


def cmd_create(ctx: Context) -> int:
    """Create a runner; a one-time secret is printed here, once, and nowhere else."""
    name: str | None = ctx.args.name

    async def body(hub: RunnerHub) -> int:
        provider = one_account(hub, ctx)
        title = provider_class(provider.provider).title
        try:
            created = await provider.create_runner(name)
        except errors.UsageError:
            if name:
                raise
            # The vendor names runners at creation; its message would show the library call.
            raise errors.UsageError(
                f"{title} runners are created by name: runnerhub create NAME "
                f"--account {provider.account}"
            ) from None
        credentials = created.credentials
        out = ctx.out
        if name and created.runner_id is None:
            out.warning(
                f"the name {name!r} was not sent: {title} creates credentials, and the "
                "runner takes its name when it first connects"
            )
        if ctx.output == "json":
            out.json(
                {
                    "account": provider.account,
                    "provider": provider.provider,
                    "runner_id": created.runner_id,
                    "name": created.name if created.runner_id is not None else None,
                    "api_key_id": credentials.api_key_id if credentials else None,
                    # The one place a secret is printed: the user asked for it to be made.
                    "api_key_secret": (
                        credentials.api_key_secret.get_secret_value() if credentials else None
                    ),
                    "manifest_url": created.manifest_url,
                    "jit_config": (
                        created.jit_config.get_secret_value() if created.jit_config else None
                    ),
                }
            )
            return ExitCode.OK
        named = created.runner_id is not None and created.name
        what = f"runner {created.name}" if named else "runner credentials"
        out.line(f"Created {what} in account {provider.account}.")
        if credentials is not None:
            out.line(f"API key id: {credentials.api_key_id}")
            out.line()
            out.line("Store this secret now — it will not be shown again:")
            out.line()
            out.line(f"    {credentials.api_key_secret.get_secret_value()}")
            out.line()
            out.line("Deploy the runner with this key pair; it is listed once it connects.")
        if created.manifest_url:
            out.line("Deploy it with the command below; the URL works without authentication,")
            out.line("so treat it as a secret:")
            out.line()
            out.line(f"    kubectl apply -f {created.manifest_url}")
        if created.jit_config is not None:
            out.line(f"Runner id: {created.runner_id}")
            out.line()
            out.line("Start it with this just-in-time config; store it now — it will not be")
            out.line("shown again, and anyone holding it can start the runner:")
            out.line()
            out.line(f"    ./run.sh --jitconfig {created.jit_config.get_secret_value()}")
        return ExitCode.OK

    return with_hub(ctx, body)


def _stdin_isatty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # closed
        return False


def cmd_delete(ctx: Context) -> int:
    """Delete a runner, after a y/N confirmation on a terminal unless ``--yes``."""
    if not ctx.args.yes and not _stdin_isatty():
        raise errors.UsageError(
            "refusing to delete without confirmation: stdin is not a terminal; pass --yes"
        )
    # Found first (a bare id may need a lookup), asked second, outside any event loop,
    # so Ctrl-C interrupts the question at once.
    account, runner_id = resolve(ctx)
    if not ctx.args.yes:
        ctx.out.stderr.write(f"Delete runner {runner_id} of account {account}? [y/N] ")
        ctx.out.stderr.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            ctx.out.note("Not deleted.")
            return ExitCode.OK

    async def body(hub: RunnerHub) -> int:
        (provider,) = select(hub, [account])
        try:
            await provider.delete_runner(runner_id)
        except errors.NotFoundError as exc:
            raise not_found(exc, provider, runner_id) from None
        if ctx.output == "json":
            ctx.out.json({"account": account, "id": runner_id, "deleted": True})
        else:
            ctx.out.line(f"Deleted runner {runner_id} of account {account}.")
        return ExitCode.OK

    return with_hub(ctx, body)


def cmd_set_description(ctx: Context) -> int:
    """Set a runner's description (the vendor's answer is not echoed: it may hold secrets)."""

    async def body(provider: RunnerProvider, runner_id: str) -> int:
        text = ctx.args.text
        if (
            not isinstance(provider, SupportsDescription)
            or Capability.UPDATE_DESCRIPTION not in provider.capabilities
        ):
            raise lacking(provider, "set-description")
        await provider.update_description(runner_id, text)
        if ctx.output == "json":
            ctx.out.json({"account": provider.account, "id": runner_id, "description": text})
        else:
            ctx.out.line(f"Description of runner {runner_id} of account {provider.account} set.")
        return ExitCode.OK

    return on_runner(ctx, body)


def cmd_manifest(ctx: Context) -> int:
    """The deployment manifest, as the vendor sends it (for ``| kubectl apply -f -``)."""

    async def body(provider: RunnerProvider, runner_id: str) -> int:
        if (
            not isinstance(provider, SupportsManifests)
            or Capability.DEPLOYMENT_MANIFEST not in provider.capabilities
        ):
            raise lacking(provider, "manifest")
        ctx.out.write(await provider.deployment_manifest(runner_id))
        return ExitCode.OK

    return on_runner(ctx, body)


def cmd_helm_values(ctx: Context) -> int:
    """The Helm values as JSON, credentials masked unless ``--show-secrets``."""

    async def body(provider: RunnerProvider, runner_id: str) -> int:
        if (
            not isinstance(provider, SupportsManifests)
            or Capability.HELM_VALUES not in provider.capabilities
        ):
            raise lacking(provider, "helm-values")
        values = await provider.helm_values(runner_id)
        if isinstance(values, bytes):
            if not ctx.args.show_secrets:
                raise errors.UsageError(
                    "the vendor sent a chart archive, not JSON values; it may hold secrets "
                    "and cannot be masked: pass --show-secrets and redirect it to a file"
                )
            if ctx.out.stdout.isatty():
                raise errors.UsageError("the chart archive is binary: redirect it to a file")
            ctx.out.stdout.flush()
            ctx.out.stdout.buffer.write(values)
            return ExitCode.OK
        ctx.out.json(dict(values) if ctx.args.show_secrets else mask(values))
        return ExitCode.OK

    return on_runner(ctx, body)


def _parameters(pairs: Sequence[str]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise errors.UsageError(f"--param wants KEY=VALUE, got {pair!r}")
        try:
            parameters[key] = json.loads(value)
        except ValueError:
            parameters[key] = value
    return parameters


def cmd_op(ctx: Context) -> int:
    """Run a vendor operation; print its answer with credentials masked."""
    parameters = _parameters(ctx.args.param or ())

    async def body(provider: RunnerProvider, runner_id: str) -> int:
        if (
            not isinstance(provider, SupportsOperations)
            or Capability.RUN_OPERATION not in provider.capabilities
        ):
            raise lacking(provider, "op")
        answer = await provider.run_operation(runner_id, ctx.args.operation, parameters)
        if isinstance(answer, str):
            ctx.out.line(mask(answer))
        else:
            ctx.out.json(mask(answer))
        return ExitCode.OK

    return on_runner(ctx, body)
