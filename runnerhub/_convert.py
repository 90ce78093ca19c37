"""Wire-format helpers shared by vendor mappers: a strict cattrs converter and value readers.

Vendor payloads are structured into private attrs DTOs by a converter that
refuses silent coercion ("5" is not an int, "yes" is not a bool) but ignores
unknown keys, so a vendor adding fields never breaks us. Every failure
becomes :class:`runnerhub.errors.ResponseFormatError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import cattrs

from .errors import ResponseFormatError

__all__ = ["as_str", "make_wire_converter", "parse_timestamp", "structure"]

T = TypeVar("T")

# What a structuring failure can raise with detailed validation off.
_STRUCTURE_ERRORS = (
    cattrs.BaseValidationError,
    cattrs.StructureHandlerNotFoundError,
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
)


def _strict(kind: type[T], *, also: tuple[type, ...] = ()) -> Callable[[Any, type], T]:
    def hook(value: Any, _: type) -> T:
        # bool is an int subclass; a JSON true is not a count.
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {kind.__name__}, got a boolean")
        if isinstance(value, (kind, *also)):
            return value  # type: ignore[return-value]
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")

    return hook


def _strict_list(value: Any, _: type) -> list[Any]:
    # cattrs would build a list from any iterable, a string included.
    if not isinstance(value, list):
        raise TypeError(f"expected an array, got {_json_type(value)}")
    return value


def make_wire_converter() -> cattrs.Converter:
    """A converter for vendor JSON: strict primitives, unknown keys ignored, no detail overhead."""
    converter = cattrs.Converter(detailed_validation=False, forbid_extra_keys=False)
    converter.register_structure_hook(str, _strict(str))
    converter.register_structure_hook(int, _strict(int))
    converter.register_structure_hook(bool, _strict(bool))
    converter.register_structure_hook(float, _strict(float, also=(int,)))
    converter.register_structure_hook(Any, lambda value, _: value)
    converter.register_structure_hook_func(lambda cls: cls == list[Any], _strict_list)
    return converter


def structure(converter: cattrs.Converter, data: Any, cls: type[T], what: str) -> T:
    """Structure ``data`` as ``cls`` or raise ``ResponseFormatError`` naming ``what``."""
    if not isinstance(data, Mapping):
        raise ResponseFormatError(f"{what}: expected a JSON object, got {_json_type(data)}")
    try:
        return converter.structure(data, cls)
    except _STRUCTURE_ERRORS as exc:
        raise ResponseFormatError(f"{what}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(_reason(sub) for sub in exc.exceptions) or exc.message
    return str(exc) or type(exc).__name__


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def as_str(value: Any) -> str | None:
    """``value`` if it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime (UTC if no offset), or None.

    Tolerant on purpose: a missing or unreadable timestamp is "not known",
    not a broken runner; the raw payload keeps the original text.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
