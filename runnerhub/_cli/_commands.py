"""The command table: each command's name and the function that runs it.

The functions live by concern: ``_accounts`` (the accounts file), ``_runners``
(one runner), ``_fleet`` (``ls``, ``watch``), ``_sandbox`` (``sandbox``,
``demo``); ``_common`` holds what they share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from ._accounts import cmd_accounts
from ._common import Context, ExitCode, error_text, exit_code_for
from ._fleet import cmd_ls, cmd_watch
from ._runners import (
    cmd_create,
    cmd_delete,
    cmd_describe,
    cmd_get,
    cmd_health,
    cmd_helm_values,
    cmd_manifest,
    cmd_op,
    cmd_set_description,
)
from ._sandbox import cmd_demo, cmd_sandbox

__all__ = ["COMMANDS", "Context", "ExitCode", "error_text", "exit_code_for"]

COMMANDS: Final[Mapping[str, Callable[[Context], int]]] = {
    "accounts": cmd_accounts,
    "ls": cmd_ls,
    "get": cmd_get,
    "describe": cmd_describe,
    "health": cmd_health,
    "create": cmd_create,
    "delete": cmd_delete,
    "set-description": cmd_set_description,
    "manifest": cmd_manifest,
    "helm-values": cmd_helm_values,
    "op": cmd_op,
    "watch": cmd_watch,
    "sandbox": cmd_sandbox,
    "demo": cmd_demo,
}
