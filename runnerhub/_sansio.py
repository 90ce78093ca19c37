"""The pure half of the HTTP core: no I/O, no session, no clock.

Everything here is a function of values (a route and its parameters; a
status, headers and body; a URL; the library's own credentials), so it is
tested without a socket. ``runnerhub._http`` runs the one I/O loop around it.

The core parses no vendor's error body: each vendor module declares a
``parse_error`` (see :data:`ErrorParser`) that turns its bodies into an
:class:`ErrorInfo`; :func:`error_from_response` then picks the error class,
redacts the library's credentials from every piece of vendor text, and bounds
its length.
"""

from __future__ import annotations

import base64
import binascii
import functools
import html
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final
from urllib.parse import quote, quote_plus, urlsplit

import attrs
from multidict import CIMultiDictProxy

from . import errors
from .retry import parse_retry_after

json_loads: Callable[[bytes], Any]
try:  # orjson is an optional speed-up; the stdlib parser gives the same values.
    import orjson

    json_loads = orjson.loads
except ImportError:  # pragma: no cover - exercised when orjson is absent
    json_loads = json.loads

__all__ = [
    "ErrorInfo",
    "ErrorParser",
    "Redactor",
    "Response",
    "Route",
    "check_base_url",
    "check_header_value",
    "decode_json",
    "encode_segment",
    "error_code",
    "error_from_response",
    "error_text",
    "json_object",
    "no_error_info",
]

# Characters that would let a credential break out of its header line.
_HEADER_BREAKERS: Final = frozenset("\r\n\0")
# Bounds on vendor text copied into an error (after redaction).
_MAX_MESSAGE: Final = 1000
_MAX_CODE: Final = 200
_MAX_TRACE_ID: Final = 200


# -- routes ------------------------------------------------------------------


@attrs.frozen
class Route:
    """One endpoint: operation name (for limits and errors), method, path template.

    ``retry_server_errors=False`` keeps 5xx answers from being retried where a
    vendor uses them as a normal answer (a health probe of a silent runner).
    ``log_params=False`` logs the path template instead of the rendered path,
    for parameters that are themselves credentials (a capability URL's key).
    ``buckets`` names extra buckets the route also draws from (GitHub's
    "mutations").
    """

    operation: str
    method: str
    path: str
    retry_server_errors: bool = True
    log_params: bool = True
    buckets: tuple[str, ...] = ()

    @property
    def idempotent(self) -> bool:
        """GET, PUT and DELETE may be repeated; POST may not."""
        return self.method != "POST"

    def render(self, params: Mapping[str, str]) -> str:
        """The path with each parameter percent-encoded as exactly one segment."""
        one = _one_field(self.path)
        if one is not None and len(params) == 1 and one[1] in params:
            # The usual route, "/runners/{id}": what format_map gives, by concatenation.
            prefix, name, suffix = one
            return prefix + encode_segment(params[name]) + suffix
        return self.path.format_map({key: encode_segment(value) for key, value in params.items()})


@functools.cache
def _one_field(template: str) -> tuple[str, str, str] | None:
    """``(prefix, name, suffix)`` of a template "prefix{name}suffix" with no other braces."""
    start = template.find("{")
    end = template.find("}", start + 1)
    if start < 0 or end < 0:
        return None
    prefix, name, suffix = template[:start], template[start + 1 : end], template[end + 1 :]
    if not name.isidentifier() or "}" in prefix or "{" in suffix or "}" in suffix:
        return None  # a format spec, an escaped brace, or more fields: format_map's job
    return prefix, name, suffix


def encode_segment(value: str) -> str:
    """Percent-encode ``value`` so that it stays one path segment.

    ``/``, ``?``, ``#`` and ``%`` are encoded, and a segment of dots is
    encoded too so that no URL normalisation can turn it into a parent
    reference.

    Raises:
        UsageError: for an empty value or one that is not valid Unicode.
    """
    if not isinstance(value, str) or not value:
        raise errors.UsageError(f"a runner id must be a non-empty string, got {value!r}")
    # Ids are usually unreserved characters only, which quote() leaves as they are.
    try:
        encoded = value if _all_unreserved(value) else quote(value, safe="")
    except UnicodeEncodeError:  # lone surrogates, as json.loads makes from "\ud800"
        raise errors.UsageError("a runner id must be valid Unicode text") from None
    if not encoded.strip("."):
        encoded = encoded.replace(".", "%2E")
    return encoded


# RFC 3986 unreserved characters: exactly what quote(..., safe="") never encodes.
_all_unreserved: Final = re.compile(r"[A-Za-z0-9._~-]+").fullmatch


# -- responses ---------------------------------------------------------------


@attrs.frozen
class Response:
    """A complete response: status, headers and the whole body."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case."""
        return self.headers.get("Content-Type", "").partition(";")[0].strip().lower()


def decode_json(body: bytes) -> Any:
    """Parse a JSON body; raise ``ValueError`` when it is not JSON."""
    try:
        return json_loads(body)
    except ValueError as exc:  # orjson's and json's decode errors are ValueErrors
        raise ValueError(str(exc)) from None


def json_object(headers: Mapping[str, str], body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None (empty, HTML, not JSON, not an object).

    A helper for vendors' error parsers: anything labelled HTML is not parsed,
    since gateways send their error pages with any status.
    """
    content_type = headers.get("Content-Type", "").lower()
    if not body or "html" in content_type:
        return None
    try:
        data = decode_json(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def error_code(value: Any) -> str | None:
    """A vendor's error code as text: strings and integers count, booleans do not."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value)


def error_text(value: Any) -> str | None:
    """A vendor's error message as text; structured details become bounded JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=str)[:500]


# -- error classification ----------------------------------------------------


@attrs.frozen
class ErrorInfo:
    """What a vendor's error body says, as read by its ``parse_error``.

    Attributes:
        code: The vendor's error code, as text.
        message: The vendor's message (bounded and redacted by the core).
        rate_limited: The answer is a rate limit whatever its status (e.g. a
            403 that a vendor uses for a secondary limit): ``RateLimitError``.
        retry_after: Seconds the vendor asks to wait, when it says so in a
            way ``Retry-After`` does not carry.
    """

    code: str | None = None
    message: str | None = None
    rate_limited: bool = False
    retry_after: float | None = None


#: ``parse_error(status, headers, body) -> ErrorInfo``; it must not raise.
ErrorParser = Callable[[int, Mapping[str, str], bytes], ErrorInfo]

_NOTHING: Final = ErrorInfo()


def no_error_info(status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
    """The parser of a vendor that declares none: the core then describes the status."""
    return _NOTHING


_STATUS_ERRORS: Final[Mapping[int, type[errors.APIError]]] = {
    400: errors.BadRequestError,
    401: errors.AuthenticationError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    429: errors.RateLimitError,
}
# 5xx answers that say for certain the request was not acted upon.
_NOT_ACTED: Final = frozenset({501, 505})


def error_from_response(
    response: Response,
    *,
    trace_headers: Iterable[str],
    provider: str,
    account: str,
    operation: str,
    parse_error: ErrorParser = no_error_info,
    redact: Redactor | None = None,
    idempotent: bool = True,
) -> errors.APIError:
    """The typed error for a non-2xx response (a pure function of status, headers, body).

    Args:
        response: The vendor's answer.
        trace_headers: Response headers that may carry the vendor's trace id.
        provider: Vendor name, for the error's context.
        account: Account label, for the error's context.
        operation: Operation name, for the error's context.
        parse_error: The vendor's error-body parser.
        redact: Removes the library's credentials from vendor text.
        idempotent: False for a request that may have taken effect: a 5xx
            then raises ``OutcomeUnknownServerError``.
    """
    status = response.status
    try:
        info = parse_error(status, response.headers, response.body)
    except Exception:  # a parser bug must not hide the vendor's status
        info = _NOTHING
    cls = _STATUS_ERRORS.get(status) or (errors.ServerError if status >= 500 else errors.APIError)
    if info.rate_limited:
        cls = errors.RateLimitError
    elif cls is errors.ServerError and not idempotent and status not in _NOT_ACTED:
        cls = errors.OutcomeUnknownServerError
    clean = redact or _NO_REDACTION
    message = clean(info.message)[:_MAX_MESSAGE] if info.message else ""
    if not message:
        message = f"{_status_phrase(status)} ({_body_kind(response.body)})"
    trace_id = next((response.headers[h] for h in trace_headers if h in response.headers), None)
    error = cls(
        message,
        status=status,
        code=clean(info.code)[:_MAX_CODE] if info.code else None,
        trace_id=clean(trace_id)[:_MAX_TRACE_ID] if trace_id else None,
        provider=provider,
        account=account,
        operation=operation,
    )
    if isinstance(error, errors.RateLimitError):
        error.retry_after = (
            info.retry_after
            if info.retry_after is not None
            else parse_retry_after(response.headers.get("Retry-After"))
        )
    return error


def _body_kind(body: bytes) -> str:
    if not body.strip():
        return "empty error body"
    try:
        decode_json(body)
    except ValueError:
        return "non-JSON error body"
    return "no message in the error body"


def _status_phrase(status: int) -> str:
    from http import HTTPStatus  # noqa: PLC0415 - error path only

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


# -- redaction ---------------------------------------------------------------

# Shorter strings are not searched for: they would blank out ordinary words,
# and no vendor issues credentials that short.
_MIN_SECRET: Final = 4
_MASK: Final = "[redacted]"


class Redactor:
    """Removes every form of the library's own credentials from vendor text.

    A vendor or gateway may echo what it received (the ``Authorization``
    header, a cookie, a key) into an error body or a trace-id header. The
    library knows its credentials, so it searches for each of them as sent and
    as commonly re-encoded: raw, percent-encoded (both flavours), JSON- and
    HTML-escaped, and base64 (standard and URL-safe, padded or not); the match
    ignores case, since gateways fold case and percent-encoding may use either.
    Its ``repr`` never shows what it searches for.
    """

    __slots__ = ("_found", "_headers", "_pattern", "_secrets")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Kept as given: the forms are derived on first use, since most providers
        # never see an error and 10,000 accounts would otherwise hold ~2.5 KB each.
        self._secrets = tuple(secrets)
        self._headers: tuple[tuple[str, str], ...] = ()
        self._found: frozenset[str] | None = None
        self._pattern: re.Pattern[str] | None = None

    @classmethod
    def for_headers(cls, headers: Mapping[str, str], extra: Iterable[str] = ()) -> Redactor:
        """A redactor for the credentials inside authentication headers.

        Each header value counts, and so do its parts: the credential after an
        auth scheme (``Bearer T``, ``UserKey K``), a Basic pair decoded and its
        password alone, and each cookie value.
        """
        redactor = cls(extra)
        redactor._headers = tuple(headers.items())
        return redactor

    def _forms(self) -> frozenset[str]:
        if self._found is None:
            secrets = [*_header_secrets(dict(self._headers)), *self._secrets]
            self._found = frozenset(
                form
                for secret in secrets
                if isinstance(secret, str) and len(secret) >= _MIN_SECRET
                for form in _forms(secret)
                if len(form) >= _MIN_SECRET
            )
        return self._found

    def __call__(self, text: str) -> str:
        """``text`` with every known credential form replaced by ``[redacted]``."""
        if self._pattern is None:
            forms = self._forms()
            if not forms:
                return text
            # Longest first, so that a secret inside a longer form is masked as a whole.
            ordered = sorted(forms, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE)
        return self._pattern.sub(_MASK, text)

    def __repr__(self) -> str:
        return f"<Redactor of {len(self._forms())} credential forms>"

    def __reduce__(self) -> Any:
        raise TypeError("a Redactor holds credentials and is not picklable")


_NO_REDACTION: Final = Redactor()


def _header_secrets(headers: Mapping[str, str]) -> Iterator[str]:
    for name, value in headers.items():
        yield value
        scheme, _, credential = value.partition(" ")
        if credential:
            yield credential.strip()
            if scheme.lower() == "basic":
                try:
                    pair = base64.b64decode(credential, validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    continue
                yield pair
                yield pair.partition(":")[2]
        if name.lower() == "cookie":
            for cookie in value.split(";"):
                yield cookie.strip()
                yield cookie.partition("=")[2].strip()


def _forms(secret: str) -> Iterator[str]:
    yield secret
    yield quote(secret, safe="")
    yield quote(secret)
    yield quote_plus(secret)
    yield json.dumps(secret)[1:-1]
    yield json.dumps(secret, ensure_ascii=False)[1:-1]
    yield html.escape(secret)
    raw = secret.encode()
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        yield text
        yield text.rstrip("=")


# -- URLs and headers --------------------------------------------------------


def check_header_value(name: str, value: str) -> str:
    """Refuse a credential that could break its header line (CR, LF, NUL)."""
    if not isinstance(value, str) or not value:
        raise errors.UsageError(f"{name} must be a non-empty string")
    if _HEADER_BREAKERS.intersection(value) or not value.isprintable():
        raise errors.UsageError(f"{name} contains a control character")
    return value


def check_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    """Normalise ``base_url``; refuse plain http to a non-loopback host unless allowed.

    No message quotes the URL: a URL that is refused may hold a password
    (``https://user:PASSWORD@host``), even one that is malformed around it.

    Raises:
        UsageError: for userinfo, a query or fragment, a scheme other than
            http(s), a malformed host or port, or insecure http.
    """
    if (
        not isinstance(base_url, str)
        or not base_url.isprintable()
        or any(c.isspace() for c in base_url)
    ):
        raise errors.UsageError("base_url must be a URL without spaces or control characters")
    # Userinfo is refused before anything else is read, whatever the scheme.
    authority = base_url.partition("//")[2].split("/", 1)[0].split("?", 1)[0]
    if "@" in authority.split("#", 1)[0]:
        raise errors.UsageError(
            "base_url must not carry credentials (user:password@); pass them as arguments"
        )
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - reading it validates the port (range, digits)
    except ValueError:
        raise errors.UsageError("base_url is not a valid URL (host or port)") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise errors.UsageError("base_url must be an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:  # pragma: no cover - '@' above
        raise errors.UsageError("base_url must not carry credentials")
    if parts.query or parts.fragment:
        raise errors.UsageError("base_url must not carry a query or a fragment")
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise errors.UsageError(
            f"refusing plain http to {parts.hostname}: credentials would travel unencrypted; "
            "use https or pass allow_insecure_http=True"
        )
    return base_url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
