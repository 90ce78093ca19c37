"""The accounts file: credentials by reference, refusals, and a hub that works."""

from __future__ import annotations

from pathlib import Path

import pytest

from runnerhub import KubiyaProvider, RateLimit, RunnerHub, SodaProvider, errors
from runnerhub.sandbox import Sandbox

ENV = {"EU_ID": "key-eu", "EU_SECRET": "s3cret-eu", "KUBIYA_KEY": "k3y-kubiya"}


def write(tmp_path: Path, text: str) -> Path:
    """Write an accounts file and return its path."""
    path = tmp_path / "runnerhub.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_env_and_file_credentials(tmp_path: Path) -> None:
    """Credentials come from environment variables and secret files; options pass through."""
    (tmp_path / "us.secret").write_text("s3cret-us\n", encoding="utf-8")
    path = write(
        tmp_path,
        """
        [defaults]
        timeout = 12.5
        [accounts.soda-eu]
        provider = "soda"
        api_key_id_env = "EU_ID"
        api_key_secret_env = "EU_SECRET"
        [accounts.soda-us]
        provider = "soda"
        region = "us"
        api_key_id = "key-us"
        api_key_secret_file = "us.secret"
        [accounts.kubiya-prod]
        provider = "kubiya"
        api_key_env = "KUBIYA_KEY"
        [accounts.kubiya-prod.rate_limits]
        "*" = [{max_requests = 5, period_seconds = 1}]
        """,
    )
    hub = RunnerHub.from_config(path, environ=ENV)
    labels = [p.account for p in hub.providers]
    assert labels == ["soda-eu", "soda-us", "kubiya-prod"]
    eu, us, kubiya = hub.providers
    assert isinstance(eu, SodaProvider)
    assert isinstance(us, SodaProvider)
    assert isinstance(kubiya, KubiyaProvider)
    assert us.base_url == "https://cloud.us.soda.io"
    assert kubiya._http.bucket("get_runner") is not None
    bucket = kubiya._http.bucket("get_runner")
    assert bucket is not None
    assert bucket.limits == (RateLimit(5, 1),)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('provider = "soda"\napi_key_id = "a"\napi_key_secret = "inline"', "may not be written"),
        ('provider = "kubiya"\napi_key = "inline"', "may not be written"),
        ('provider = "soda"\ntoken = "inline"', "may not be written"),
        ('provider = "gitlab"', "provider must be one of"),
        ('provider = "kubiya"\napi_key_env = "KUBIYA_KEY"\ncolour = "blue"', r"extra fields found \(colour\) @ accounts.acct-1"),
        ('provider = "kubiya"\napi_key_env = "KUBIYA_KEY"\ntimeout = "slow"', "expected float.* @ accounts.acct-1.timeout"),
        (
            'provider = "kubiya"\napi_key_env = "KUBIYA_KEY"\napi_key_file = "x"',
            "one way only",
        ),
        (
            'provider = "kubiya"\napi_key_env = "KUBIYA_KEY"\nrate_limits = {"*" = {a = 1}}',
            "max_requests",
        ),
        ('provider = "kubiya"\napi_key_env = "KUBIYA_KEY"\nlimiter = "memcached://x"', "redis"),
        ('provider = "soda"\napi_key_id_env = "EU_ID"', "go together"),
    ],
)
def test_refusals_name_the_account(tmp_path: Path, body: str, message: str) -> None:
    """Inline secrets, unknown keys and bad values fail the file, naming the key's path."""
    path = write(tmp_path, f"[accounts.acct-1]\n{body}\n")
    with pytest.raises(errors.UsageError, match=message) as info:
        RunnerHub.from_config(path, environ=ENV)
    assert "acct-1" in str(info.value)
    assert "inline" not in str(info.value)


def test_unreadable_files(tmp_path: Path) -> None:
    """A missing file, bad TOML, or a file without accounts is a UsageError."""
    with pytest.raises(errors.UsageError, match="not found"):
        RunnerHub.from_config(tmp_path / "absent.toml")
    with pytest.raises(errors.UsageError, match="TOML"):
        RunnerHub.from_config(write(tmp_path, "[accounts"))
    with pytest.raises(errors.UsageError, match="no \\[accounts"):
        RunnerHub.from_config(write(tmp_path, "[defaults]\ntimeout = 1\n"))
    with pytest.raises(errors.UsageError, match="top-level"):
        RunnerHub.from_config(write(tmp_path, "[other]\n[accounts.a]\nprovider='soda'\n"))


def test_redis_limiter_is_shared_and_owned_by_the_hub(tmp_path: Path) -> None:
    """One limiter URL gives one RedisLimiter, shared by the accounts and owned by the hub."""
    path = write(
        tmp_path,
        """
        [defaults]
        limiter = "redis://127.0.0.1:1/0"
        [accounts.a]
        provider = "kubiya"
        api_key_env = "KUBIYA_KEY"
        [accounts.b]
        provider = "soda"
        api_key_id_env = "EU_ID"
        api_key_secret_env = "EU_SECRET"
        """,
    )
    hub = RunnerHub.from_config(path, environ=ENV)
    limiters = {id(p._http.limiter) for p in hub.providers}  # type: ignore[attr-defined]
    assert len(limiters) == 1
    assert len(hub._limiters) == 1


async def test_a_configured_hub_inventories_the_sandbox(tmp_path: Path) -> None:
    """A hub read from a file lists a served sandbox."""
    sandbox = Sandbox(seed=2)
    org = sandbox.add_soda_org("acme", runners=15)
    async with sandbox.serve() as base_url:
        path = write(
            tmp_path,
            f"""
            [accounts.acme]
            provider = "soda"
            base_url = "{base_url}"
            api_key_id = "{org.api_key_id}"
            api_key_secret_env = "ACME_SECRET"
            """,
        )
        async with RunnerHub.from_config(path, environ={"ACME_SECRET": org.api_key_secret}) as hub:
            inventory = await hub.inventory()
    assert inventory.by_account() == {"acme": 15}
