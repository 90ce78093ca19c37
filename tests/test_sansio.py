"""runnerhub._sansio: URL checks, error classification and vendor error parsers, without I/O."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from runnerhub import KubiyaProvider, SodaProvider, errors
from runnerhub._sansio import (
    ErrorInfo,
    Response,
    check_base_url,
    error_code,
    error_from_response,
    error_text,
    json_object,
)
from runnerhub.vendors import kubiya, soda

PASSWORD = "Hunter2-PASSWORD"


def _response(status: int, body: bytes = b"", **headers: str) -> Response:
    raw: CIMultiDict[str] = CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()})
    return Response(status, CIMultiDictProxy(raw), body)


# -- base_url userinfo (issue 10, item 6) ----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"htps://svc:{PASSWORD}@host",
        f"https://svc:{PASSWORD}@host",
        f"http://svc:{PASSWORD}@127.0.0.1:8080/api",
        f"https://{PASSWORD}@host",
        f"https://svc:{PASSWORD}@host:notaport",
        f"https://svc:{PASSWORD}@[::1",
        f"ftp://svc:{PASSWORD}@host/x",
        f"https://svc:{PASSWORD.lower()}@host?x=1",
    ],
)
def test_userinfo_is_refused_without_quoting(url: str) -> None:
    """A base URL with user:password@ is refused, and the message quotes none of the URL."""
    with pytest.raises(errors.UsageError) as caught:
        check_base_url(url, allow_insecure_http=True)
    text = str(caught.value) + repr(caught.value)
    assert PASSWORD.lower() not in text.lower()
    assert "host" not in text.replace("a host", "")
    assert "credentials" in text


def test_providers_refuse_userinfo() -> None:
    """Both providers refuse a base URL with userinfo; the password is not in the error."""
    url = f"htps://svc:{PASSWORD}@127.0.0.1"
    with pytest.raises(errors.UsageError) as soda_error:
        SodaProvider("id", "secret-value", base_url=url)
    with pytest.raises(errors.UsageError) as kubiya_error:
        KubiyaProvider("kubiya-key", base_url=url)
    assert PASSWORD not in str(soda_error.value) + str(kubiya_error.value)


@pytest.mark.parametrize(
    "url",
    [f"https://host:{PASSWORD}", f"htps://host/{PASSWORD}", f"https://host/?k={PASSWORD}"],
)
def test_other_refusals_do_not_quote_the_url(url: str) -> None:
    """A malformed port, a wrong scheme or a query: refused without echoing the URL."""
    with pytest.raises(errors.UsageError) as caught:
        check_base_url(url, allow_insecure_http=False)
    assert PASSWORD not in str(caught.value)


def test_at_sign_in_the_path_is_not_userinfo() -> None:
    """An ``@`` after the authority (in the path) is not userinfo and is accepted."""
    assert check_base_url("https://host/team@x/", allow_insecure_http=False) == (
        "https://host/team@x"
    )


# -- error classification --------------------------------------------------------------------


def _classify(
    status: int,
    info: ErrorInfo,
    *,
    idempotent: bool = True,
    headers: Mapping[str, str] | None = None,
) -> errors.APIError:
    def parse(status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
        return info

    return error_from_response(
        _response(status, b"{}", **(headers or {})),
        trace_headers=("X-Trace",),
        provider="v",
        account="a",
        operation="op",
        parse_error=parse,
        idempotent=idempotent,
    )


def test_vendor_rate_limit_flag_makes_a_rate_limit_error() -> None:
    """A parser's ``rate_limited`` turns any status (a 403) into RateLimitError with its wait."""
    error = _classify(403, ErrorInfo(message="secondary", rate_limited=True, retry_after=61.0))
    assert type(error) is errors.RateLimitError
    assert isinstance(error, errors.RateLimitError)
    assert error.retry_after == 61.0
    assert error.status == 403


def test_retry_after_header_is_the_fallback() -> None:
    """Without a parser's wait, ``Retry-After`` sets retry_after."""
    error = _classify(429, ErrorInfo(), headers={"Retry_After": "7"})
    assert isinstance(error, errors.RateLimitError)
    assert error.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_5xx_to_a_non_idempotent_request_is_outcome_unknown(status: int) -> None:
    """A 5xx to a POST is an OutcomeUnknownServerError, still a ServerError."""
    error = _classify(status, ErrorInfo(), idempotent=False)
    assert isinstance(error, errors.OutcomeUnknownServerError)
    assert isinstance(error, errors.ServerError)
    assert isinstance(error, errors.OutcomeUnknownError)


@pytest.mark.parametrize(("status", "idempotent"), [(501, False), (505, False), (500, True)])
def test_5xx_that_proves_nothing_happened_is_a_plain_server_error(
    status: int, idempotent: bool
) -> None:
    """501/505 say the request was not acted upon; an idempotent 5xx is plain too."""
    error = _classify(status, ErrorInfo(), idempotent=idempotent)
    assert type(error) is errors.ServerError


def test_a_parser_that_raises_does_not_hide_the_status() -> None:
    """A buggy vendor parser gives the status-derived error, not the parser's exception."""

    def broken(status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
        raise KeyError("bug")

    error = error_from_response(
        _response(404, b"{}"),
        trace_headers=(),
        provider="v",
        account="a",
        operation="op",
        parse_error=broken,
    )
    assert type(error) is errors.NotFoundError
    assert error.message == "Not Found (no message in the error body)"


def test_vendor_text_is_bounded() -> None:
    """Message, code and trace id are cut to their bounds."""
    error = _classify(
        400, ErrorInfo(code="c" * 999, message="m" * 5000), headers={"X_Trace": "t" * 999}
    )
    assert len(error.message) == 1000
    assert len(error.code or "") == 200
    assert len(error.trace_id or "") == 200


# -- helpers for vendor parsers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("x", "x"), (404, "404"), (True, None), (1.5, None), (None, None)]
)
def test_error_code(value: object, expected: str | None) -> None:
    """Codes are strings or integers; booleans and other types are dropped."""
    assert error_code(value) == expected


def test_error_text_serialises_structures() -> None:
    """A structured message becomes JSON text of at most 500 characters."""
    assert error_text(None) is None
    assert error_text("m") == "m"
    assert error_text({"a": [1]}) == '{"a": [1]}'
    assert len(error_text(["x" * 1000]) or "") == 500


def test_json_object() -> None:
    """Only a JSON object not labelled HTML is returned."""
    assert json_object({"Content-Type": "application/json"}, b'{"a": 1}') == {"a": 1}
    assert json_object({"Content-Type": "text/html"}, b'{"a": 1}') is None
    assert json_object({}, b"[1]") is None
    assert json_object({}, b"") is None
    assert json_object({}, b"{nope") is None


def test_soda_parser_reads_only_its_shape() -> None:
    """Soda's parser reads {code, message}; Kubiya's nested shape means nothing to it."""
    body = b'{"error": {"code": "x", "message": "nested"}}'
    assert soda.parse_error(400, {}, body) == ErrorInfo()
    assert kubiya.parse_error(400, {}, body) == ErrorInfo(code="x", message="nested")
    assert soda.parse_error(400, {}, b'{"code": "c", "message": "m"}') == ErrorInfo("c", "m")
