"""JSON forms of the model (cattrs), for the CLI and ``Inventory.to_json``.

Vendor payloads (``raw``) are left out: they may carry secrets such as a
Kubiya ``gateway_password``. Errors serialise as type, message and status.
"""

from __future__ import annotations

from typing import Any

from cattrs.gen import make_dict_unstructure_fn, override
from cattrs.preconf.json import make_converter

from .errors import APIError, RunnerHubError
from .fleet import HealthFailure, Inventory
from .models import Runner, RunnerHealth

__all__ = ["error_to_json", "health_to_json", "inventory_to_json", "runner_to_json"]

_converter = make_converter()
_converter.register_unstructure_hook(
    Runner, make_dict_unstructure_fn(Runner, _converter, raw=override(omit=True))
)
_converter.register_unstructure_hook(
    RunnerHealth, make_dict_unstructure_fn(RunnerHealth, _converter, raw=override(omit=True))
)


def error_to_json(error: RunnerHubError) -> dict[str, Any]:
    """An error as ``{type, message, status?, code?, trace_id?}``; never headers or bodies."""
    data: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, APIError):
        data.update(status=error.status, code=error.code, trace_id=error.trace_id)
    return data


def runner_to_json(runner: Runner) -> dict[str, Any]:
    """A runner as plain JSON data, without its vendor payload."""
    result: dict[str, Any] = _converter.unstructure(runner, Runner)
    return result


def health_to_json(health: RunnerHealth) -> dict[str, Any]:
    """A health report as plain JSON data, without its vendor payload."""
    result: dict[str, Any] = _converter.unstructure(health, RunnerHealth)
    return result


def _failure(failure: HealthFailure) -> dict[str, Any]:
    return {
        "account": failure.account,
        "runner_id": failure.runner_id,
        "error": error_to_json(failure.error),
    }


def inventory_to_json(inventory: Inventory) -> dict[str, Any]:
    """A whole inventory: summary, runners, failed accounts and failed health calls."""
    return {
        "summary": inventory.summary(),
        "runners": [runner_to_json(r) for r in inventory.runners],
        "errors": {label: error_to_json(e) for label, e in inventory.errors.items()},
        "health_failures": [_failure(f) for f in inventory.health_failures],
    }


