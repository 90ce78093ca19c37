"""JSON forms of the model (cattrs), for the CLI and ``Inventory.to_json``.

Vendor payloads (``raw``) are left out: they may carry secrets such as a
Kubiya ``gateway_password``. Errors serialise as type, message and status.

This module depends on the model and the error tree only: an inventory is
read through the shape it has (:class:`_InventoryLike`), so the inventory can
use this module without either importing the other.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import cattrs

from .errors import APIError, RunnerHubError
from .models import Runner, RunnerHealth

__all__ = ["error_to_json", "health_to_json", "inventory_to_json", "runner_to_json"]


class _FailureLike(Protocol):
    @property
    def account(self) -> str: ...
    @property
    def runner_id(self) -> str: ...
    @property
    def error(self) -> RunnerHubError: ...


class _InventoryLike(Protocol):
    @property
    def runners(self) -> Sequence[Runner]: ...
    @property
    def errors(self) -> Mapping[str, RunnerHubError]: ...
    @property
    def health_failures(self) -> Sequence[_FailureLike]: ...
    def summary(self) -> dict[str, Any]: ...


@functools.cache
def _converter() -> cattrs.Converter:
    # Built on first use: serialising is rare, and import runnerhub stays light.
    from cattrs.gen import make_dict_unstructure_fn, override  # noqa: PLC0415 - see above
    from cattrs.preconf.json import make_converter  # noqa: PLC0415 - see above

    converter = make_converter()
    for cls in (Runner, RunnerHealth):
        converter.register_unstructure_hook(
            cls, make_dict_unstructure_fn(cls, converter, raw=override(omit=True))
        )
    return converter


def error_to_json(error: RunnerHubError) -> dict[str, Any]:
    """An error as ``{type, message, status?, code?, trace_id?}``; never headers or bodies."""
    data: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, APIError):
        data.update(status=error.status, code=error.code, trace_id=error.trace_id)
    return data


def runner_to_json(runner: Runner) -> dict[str, Any]:
    """A runner as plain JSON data, without its vendor payload."""
    result: dict[str, Any] = _converter().unstructure(runner, Runner)
    return result


def health_to_json(health: RunnerHealth) -> dict[str, Any]:
    """A health report as plain JSON data, without its vendor payload."""
    result: dict[str, Any] = _converter().unstructure(health, RunnerHealth)
    return result


def _failure(failure: _FailureLike) -> dict[str, Any]:
    return {
        "account": failure.account,
        "runner_id": failure.runner_id,
        "error": error_to_json(failure.error),
    }


def inventory_to_json(inventory: _InventoryLike) -> dict[str, Any]:
    """A whole inventory: summary, runners, failed accounts and failed health calls."""
    return {
        "summary": inventory.summary(),
        "runners": [runner_to_json(r) for r in inventory.runners],
        "errors": {label: error_to_json(e) for label, e in inventory.errors.items()},
        "health_failures": [_failure(f) for f in inventory.health_failures],
    }
