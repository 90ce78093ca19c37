"""The exceptions runnerhub raises.

Nothing else escapes the public API: aiohttp, JSON and structuring errors are
translated into this tree in one place (``runnerhub._http`` and the vendor
mappers)::

    RunnerHubError
    ├── UsageError                 bad arguments or configuration (also a ValueError)
    ├── UnsupportedOperation       the vendor has no such operation; raised before any I/O
    ├── TransportError             connection refused or reset, timeout, TLS failure
    │   └── OutcomeUnknownTransportError *  sent, then reset or timed out
    ├── InconsistentListingError   a consistent listing kept changing while it was read
    ├── ResponseFormatError        a body that is not JSON or not the documented shape
    │   └── ResponseTooLargeError  a body over the configured size bound, not read
    ├── OutcomeUnknownError        a create or other change may or may not have happened
    └── APIError                   the vendor answered with an error status
        ├── BadRequestError        400
        ├── AuthenticationError    401
        ├── PermissionDeniedError  403
        ├── NotFoundError          404
        ├── RateLimitError         429 (or a vendor's rate-limit 403), once retries are exhausted
        └── ServerError            5xx
            └── OutcomeUnknownServerError *  5xx to a request that may have taken effect

    * also an OutcomeUnknownError

A request that is not idempotent (a POST: create, run an operation) is never
retried once it may have reached the vendor. When it then fails in a way that
does not say whether the vendor acted (a 5xx answer, a connection reset or a
timeout after the request was sent), the error is an ``OutcomeUnknownError``
as well as the ``ServerError`` or ``TransportError`` it was before, so
existing ``except`` clauses still catch it. Check before repeating the call
(for Kubiya: ``KubiyaProvider.create_runner(name, verify_on_unknown=True)``).
A refusal before the vendor could act (connection refused, 4xx, 429) is
never an ``OutcomeUnknownError``.

Messages never contain credentials, request headers or response bodies that
could echo them; they carry the provider, account, operation, status, the
vendor's error code and message, and its trace id when one was sent. Vendor
text (message, code, trace id) has every form of the library's own
credentials removed before it is stored, so ``str``, ``repr``, logs and
pickles cannot carry an echoed credential.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "InconsistentListingError",
    "NotFoundError",
    "OutcomeUnknownError",
    "OutcomeUnknownServerError",
    "OutcomeUnknownTransportError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseFormatError",
    "ResponseTooLargeError",
    "RunnerHubError",
    "ServerError",
    "TransportError",
    "UnsupportedOperation",
    "UsageError",
]


class RunnerHubError(Exception):
    """Base class of every error runnerhub raises.

    Attributes:
        provider: Vendor name ("soda", "kubiya") when known.
        account: The provider's account label when known.
        operation: The operation that failed ("list_runners", ...) when known.
    """

    provider: str | None
    account: str | None
    operation: str | None

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        account: str | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.account = account
        self.operation = operation

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors defeat BaseException's pickling; keep errors
        # picklable so they cross process boundaries (multiprocessing workers).
        return (_rebuild, (type(self), self.__dict__.copy()))

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                self.account or self.provider,
                self.operation,
            )
            if part
        )
        return f"{self.message} [{where}]" if where else self.message


def _rebuild(cls: type[RunnerHubError], state: dict[str, Any]) -> RunnerHubError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class UsageError(RunnerHubError, ValueError):
    """The caller passed an argument or configuration runnerhub refuses."""


class UnsupportedOperation(RunnerHubError):
    """The vendor does not offer this operation; no request was sent."""


class TransportError(RunnerHubError):
    """The request did not complete: connection failure, reset or timeout."""


class OutcomeUnknownError(RunnerHubError):
    """A request that changes state may or may not have taken effect.

    Raised only as :class:`OutcomeUnknownServerError` or
    :class:`OutcomeUnknownTransportError`; catch this class to handle both.
    """


class OutcomeUnknownTransportError(TransportError, OutcomeUnknownError):
    """The connection failed after a non-idempotent request was sent (reset, timeout)."""


class InconsistentListingError(RunnerHubError):
    """``list_runners(consistent=True)`` saw the fleet change on every try."""


class ResponseFormatError(RunnerHubError):
    """The vendor answered with a body that is not the documented shape."""


class ResponseTooLargeError(ResponseFormatError):
    """The response body exceeded ``max_response_bytes`` and was not read."""


class APIError(RunnerHubError):
    """The vendor answered with an error status.

    Attributes:
        status: The HTTP status code.
        code: The vendor's error code when its body had one, as a string.
        trace_id: The vendor's request trace id (Soda: ``X-Soda-Trace-Id``).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        trace_id: str | None = None,
        provider: str | None = None,
        account: str | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, account=account, operation=operation)
        self.status = status
        self.code = code
        self.trace_id = trace_id

    def __str__(self) -> str:
        detail = f"HTTP {self.status}"
        if self.code:
            detail += f" {self.code}"
        text = f"{detail}: {self.message}"
        if self.trace_id:
            text += f" (trace id {self.trace_id})"
        base = RunnerHubError.__str__(self)
        return text + base[len(self.message) :]


class BadRequestError(APIError):
    """400: the vendor refused the request (for Soda: runner in use, Soda-hosted)."""


class AuthenticationError(APIError):
    """401: the credentials are missing, wrong, or for another region."""


class PermissionDeniedError(APIError):
    """403: the credentials lack the permission for this operation."""


class NotFoundError(APIError):
    """404: no such runner (or route)."""


class RateLimitError(APIError):
    """429 after every retry; ``retry_after`` is the vendor's hint in seconds."""

    retry_after: float | None = None


class ServerError(APIError):
    """5xx after every retry the operation allows; ``retry_after`` as the vendor stated it."""

    retry_after: float | None = None


class OutcomeUnknownServerError(ServerError, OutcomeUnknownError):
    """5xx to a non-idempotent request: the vendor may have acted before failing."""
