"""Masking of vendor data the CLI prints: by name and by shape, never the plainly harmless."""

from __future__ import annotations

from typing import Any

import pytest

from runnerhub._cli._mask import MASK, mask, mask_text

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJydW5uZXIifQ.c2lnbmF0dXJl"


def test_credential_names_are_masked_at_any_depth() -> None:
    """jwt, password, token, *Key, kubiyaPass, privateKeyPem are masked wherever they sit."""
    data = {
        "nats": {"jwt": "a.b.c", "secondJwt": "d.e.f", "subject": "s"},
        "list": [{"apiKey": "k", "gateway_password": "p", "name": "n"}],
        "kubiyaPass": "kp",
        "privateKeyPem": "pk",
        "token": "",
        "count": 3,
    }
    assert mask(data) == {
        "nats": {"jwt": MASK, "secondJwt": MASK, "subject": "s"},
        "list": [{"apiKey": MASK, "gateway_password": MASK, "name": "n"}],
        "kubiyaPass": MASK,
        "privateKeyPem": MASK,
        "token": "",
        "count": 3,
    }


def test_env_style_lists_mask_the_value_of_secret_names() -> None:
    """{name: X_PASSWORD, value: ...} and {name: API_TOKEN, value: ...} hide the value only."""
    env = [
        {"name": "X_PASSWORD", "value": "hunter2"},
        {"name": "API_TOKEN", "value": "t0k3n"},
        {"name": "KUBIYA_RUNNER_NAME", "value": "edge-1"},
    ]
    assert mask(env) == [
        {"name": "X_PASSWORD", "value": MASK},
        {"name": "API_TOKEN", "value": MASK},
        {"name": "KUBIYA_RUNNER_NAME", "value": "edge-1"},
    ]


def test_credential_stores_mask_everything_below() -> None:
    """auth.basic and credentials.* hide every filled scalar; booleans stay."""
    assert mask({"auth": {"basic": "dXNlcjpwYXNz", "enabled": True}}) == {
        "auth": {"basic": MASK, "enabled": True}
    }
    assert mask({"credentials": [{"user": "u"}]}) == {"credentials": [{"user": MASK}]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("nats://svc:hunter2@nats.local:4222/x", f"nats://svc:{MASK}@nats.local:4222/x"),
        ("https://user:p%40ss@host/path", f"https://user:{MASK}@host/path"),
        (PEM, MASK),
        (JWT, MASK),
        (f"prefix {JWT} suffix", MASK),
        ("Bearer abc.def", MASK),
        ("--token=abc --verbose=1", f"--token={MASK} --verbose=1"),
        ("DB_PASSWORD=x LOG_LEVEL=debug", f"DB_PASSWORD={MASK} LOG_LEVEL=debug"),
        ("https://cloud.soda.io/api/v1", "https://cloud.soda.io/api/v1"),
        ("config.alloy", "config.alloy"),
    ],
)
def test_shapes_are_masked_wherever_they_appear(value: str, expected: str) -> None:
    """URL passwords, PEM private keys, JWTs, auth header values and NAME=secret pairs."""
    assert mask_text(value) == expected
    assert mask({"anything": value}) == {"anything": expected}


def test_plainly_harmless_values_stay() -> None:
    """configMap.key names an entry, not a credential; ordinary values pass through."""
    data: dict[str, Any] = {
        "configMap": {"create": False, "key": "config.alloy", "name": "alloy-config"},
        "secretKeyRef": {"name": "nats", "key": "password"},
        "replicas": 2,
        "image": "ghcr.io/kubiya/runner:1.4.2",
    }
    assert mask(data) == data
