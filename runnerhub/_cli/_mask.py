"""Masking credentials in vendor data the CLI prints (Helm values, operation answers).

Pure functions over JSON-shaped data; nothing here does I/O. A value is masked
when its *name* says it is a credential, or when its *shape* does, wherever it
sits:

- by name: a key matching :data:`SECRET_NAME` (``password``, ``kubiyaPass``,
  ``privateKeyPem``, ``apiKey``, ``jwt``, ...); every scalar under a key named
  like a credential store (``auth``, ``credentials``, ``secrets``: ``auth.basic``);
  the ``value`` of an env-style entry ``{name: X_PASSWORD, value: ...}``;
  ``NAME=value`` inside a string when NAME is credential-like (``--token=...``);
- by shape: a PEM private key, a JWT, an ``Authorization``-style
  ``Bearer``/``Basic`` value, the password of a URL's userinfo
  (``nats://user:**********@host``: the rest of the URL stays).

Kept: a key named exactly ``key`` (Kubernetes' ``configMap.key`` or
``secretKeyRef.key`` names an entry, it is not one), booleans, numbers under
names that are not credential-like, empty strings. Over-masking a harmless
value is the accepted cost of never printing a credential.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["MASK", "SECRET_NAME", "mask", "mask_text"]

MASK: Final = "**********"
#: A key or variable name that says its value is a credential.
SECRET_NAME: Final = re.compile(
    r"jwt|passw|pass$|pwd|token|secret|credential|seed|cookie|authoriz|private|pem$|"
    r"(?<=.)key$|keys$|api_?key",
    re.IGNORECASE,
)
# Keys whose every scalar below is a credential: auth.basic, credentials.user, ...
_STORE_NAME: Final = re.compile(r"^(auth|authentication|credentials?|secrets?)$", re.IGNORECASE)
_PEM_PRIVATE: Final = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_JWT: Final = re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")
_AUTH_VALUE: Final = re.compile(r"^\s*(bearer|basic|userkey|token)\s+\S+", re.IGNORECASE)
# scheme://user:password@host -> the password only (RFC 3986 userinfo).
_USERINFO: Final = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s/:@]*:)(?P<pw>[^\s/@]+)(?=@)")
# NAME=value inside a string (flags, env lines), NAME credential-like.
_ASSIGNMENT: Final = re.compile(r"(?P<name>[A-Za-z_][\w.-]*)(?P<sep>=)(?P<value>[^\s,;&]+)")


def is_secret_name(name: str) -> bool:
    """Whether a key or variable named ``name`` holds a credential."""
    return bool(SECRET_NAME.search(name))


def mask_text(text: str) -> str:
    """``text`` with every credential-shaped part masked (or all of it, for keys and JWTs)."""
    if _PEM_PRIVATE.search(text) or _JWT.search(text) or _AUTH_VALUE.match(text):
        return MASK
    text = _USERINFO.sub(lambda m: m["head"] + MASK, text)

    def assignment(match: re.Match[str]) -> str:
        if is_secret_name(match["name"]):
            return match["name"] + match["sep"] + MASK
        return match[0]

    return _ASSIGNMENT.sub(assignment, text)


def _filled_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) and value != ""


def mask(data: Any, *, _store: bool = False) -> Any:
    """A copy of JSON data with every credential masked; see the module docstring."""
    if isinstance(data, Mapping):
        entry_name = data.get("name")
        env_style = isinstance(entry_name, str) and is_secret_name(entry_name)
        result: dict[str, Any] = {}
        for key, value in data.items():
            named = isinstance(key, str) and (
                _store or is_secret_name(key) or (env_style and key == "value")
            )
            if named and _filled_scalar(value):
                result[key] = MASK
            else:
                store = _store or (isinstance(key, str) and bool(_STORE_NAME.match(key)))
                result[key] = mask(value, _store=store)
        return result
    if isinstance(data, list):
        return [mask(item, _store=_store) for item in data]
    if isinstance(data, str):
        return MASK if _store and data else mask_text(data)
    return data
