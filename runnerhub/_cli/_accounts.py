"""The ``accounts`` command: what is configured, where each secret comes from, and
(with ``--check``) whether each credential works.

Nothing here prints a credential: an account shows where its secrets are read
from (``env NAME``, ``file PATH``, ``inline`` for the non-secret ones), never
their values.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .. import errors
from .._serialize import error_to_json
from ..config import Account
from ._common import Context, ExitCode, error_text, exit_code_for, load_accounts

__all__ = ["cmd_accounts"]

_HEADERS = ("ACCOUNT", "PROVIDER", "WHERE", "CREDENTIALS")


def _where(account: Account) -> str:
    return ", ".join(f"{key} {value}" for key, value in account.location) or "vendor default"


def _sources(account: Account) -> str:
    return ", ".join(f"{name} from {source}" for name, source in account.credentials) or "-"


async def _check(account: Account) -> errors.RunnerHubError | None:
    if account.error is not None:
        return account.error
    try:
        await account.provider.verify()
    except errors.RunnerHubError as exc:
        return exc
    return None


def cmd_accounts(ctx: Context) -> int:
    """List the configured accounts; ``--check`` verifies each credential."""
    loaded = load_accounts(ctx)
    accounts = loaded.accounts
    results: list[errors.RunnerHubError | None]
    if ctx.args.check:

        async def check_all() -> list[errors.RunnerHubError | None]:
            async with loaded.hub():  # closes every session and shared limiter
                return list(await asyncio.gather(*(_check(a) for a in accounts)))

        results = asyncio.run(check_all())
    else:
        results = [a.error for a in accounts]
        asyncio.run(loaded.hub().aclose())

    def state(error: errors.RunnerHubError | None) -> str:
        if error is None:
            return "ok" if ctx.args.check else "-"
        return f"failed: {error_text(error)}"

    if ctx.output == "json":
        ctx.out.json(
            {
                "source": loaded.source,
                "accounts": [
                    _json(a, e, checked=ctx.args.check)
                    for a, e in zip(accounts, results, strict=True)
                ],
            }
        )
    else:
        ctx.out.note(f"accounts from {loaded.source}")
        headers = [*_HEADERS, "STATUS"] if ctx.args.check or any(results) else list(_HEADERS)
        rows = []
        for account, error in zip(accounts, results, strict=True):
            row = [account.label, account.vendor, _where(account), _sources(account)]
            rows.append([*row, state(error)] if len(headers) > len(_HEADERS) else row)
        ctx.out.table(headers, rows)
    failed = [e for e in results if e is not None]
    for account, error in zip(accounts, results, strict=True):
        if error is not None and ctx.output != "table":
            ctx.out.error(f"account {account.label} failed: {error_text(error)}")
    if not failed:
        return ExitCode.OK
    if len(failed) < len(accounts):
        return ExitCode.PARTIAL
    codes = {exit_code_for(e) for e in failed}
    return next(iter(codes)) if len(codes) == 1 else ExitCode.ERROR


def _json(
    account: Account, error: errors.RunnerHubError | None, *, checked: bool
) -> dict[str, Any]:
    return {
        "account": account.label,
        "provider": account.vendor,
        "location": dict(account.location),
        "credentials": dict(account.credentials),
        "ok": None if not checked and error is None else error is None,
        "error": None if error is None else error_to_json(error),
    }
