"""Stand-ins for core interfaces that land from parallel branches; delete at merge.

The shared brief (§5, §6) adds to the core: ``ErrorInfo`` (``runnerhub._sansio``)
returned by ``VendorSpec.parse_error``; ``Budget`` returned by
``VendorSpec.read_budget``; and ``Route.buckets``. Until they are in this tree:

- :class:`ErrorInfo` and :class:`Budget` here have the agreed fields, so the
  core reads them by attribute whichever module defines them;
- :func:`declare` builds a ``VendorSpec`` or ``Route`` with the fields the
  core in this tree knows and leaves the others out, so GitHub's declaration
  takes effect as soon as the core knows the field.

At merge: import ``ErrorInfo`` and ``Budget`` from the core, replace
``declare(Cls, ...)`` with ``Cls(...)``, delete this module.
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

__all__ = ["Budget", "ErrorInfo", "core_knows", "declare"]

T = TypeVar("T")


@attrs.frozen
class ErrorInfo:
    """What a vendor's error response says (brief §5)."""

    code: str | None = None
    message: str | None = None
    rate_limited: bool = False
    retry_after: float | None = None


@attrs.frozen
class Budget:
    """A budget the vendor announced: ``remaining`` requests until ``reset_after`` s (brief §6)."""

    remaining: int
    reset_after: float


def core_knows(cls: type[Any], field: str) -> bool:
    """Whether the core's attrs class ``cls`` has ``field`` in this tree."""
    return field in attrs.fields_dict(cls)


def declare(cls: type[T], **fields: Any) -> T:
    """``cls(**fields)`` without the fields ``cls`` does not have yet."""
    return cls(**{name: value for name, value in fields.items() if core_knows(cls, name)})
