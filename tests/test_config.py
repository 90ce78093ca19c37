"""The accounts file: credentials by reference, refusals, and a hub that works."""

from __future__ import annotations

from pathlib import Path

import pytest

from runnerhub import (
    GitHubProvider,
    KubiyaProvider,
    RateLimit,
    RunnerProvider,
    SodaProvider,
    errors,
)
from runnerhub.config import AccountUnavailable, accounts_from_env, load_accounts, load_hub
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
    hub = load_hub(path, environ=ENV)
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
        (
            'provider = "kubiya"\napi_key_env = "KUBIYA_KEY"\ncolour = "blue"',
            r"extra fields found \(colour\) @ accounts.acct-1",
        ),
        (
            'provider = "kubiya"\napi_key_env = "KUBIYA_KEY"\ntimeout = "slow"',
            "expected float.* @ accounts.acct-1.timeout",
        ),
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
        load_hub(path, environ=ENV)
    assert "acct-1" in str(info.value)
    assert "inline" not in str(info.value)


def test_unreadable_files(tmp_path: Path) -> None:
    """A missing file, bad TOML, or a file without accounts is a UsageError."""
    with pytest.raises(errors.UsageError, match="not found"):
        load_hub(tmp_path / "absent.toml")
    with pytest.raises(errors.UsageError, match="TOML"):
        load_hub(write(tmp_path, "[accounts"))
    with pytest.raises(errors.UsageError, match="no \\[accounts"):
        load_hub(write(tmp_path, "[defaults]\ntimeout = 1\n"))
    with pytest.raises(errors.UsageError, match="top-level"):
        load_hub(write(tmp_path, "[other]\n[accounts.a]\nprovider='soda'\n"))


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
    hub = load_hub(path, environ=ENV)
    limiters = {id(p._http.limiter) for p in hub.providers}  # type: ignore[attr-defined]
    assert len(limiters) == 1
    assert len(hub._limiters) == 1


async def test_a_configured_hub_inventories_the_sandbox(tmp_path: Path) -> None:
    """A hub read from a file lists a served sandbox."""
    sandbox = Sandbox(seed=2)
    org = sandbox.add_org("soda", "acme", runners=15)
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
        async with load_hub(path, environ={"ACME_SECRET": org.api_key_secret}) as hub:
            inventory = await hub.inventory()
    assert inventory.by_account() == {"acme": 15}


async def test_unreadable_credentials_fail_only_their_account(tmp_path: Path) -> None:
    """An unset variable or a missing secret file loads its account as unavailable: every
    call raises AccountUnavailable naming the variable or file; the file still loads."""
    path = write(
        tmp_path,
        """
        [accounts.good]
        provider = "kubiya"
        api_key_env = "KUBIYA_KEY"
        [accounts.no-env]
        provider = "soda"
        api_key_id = "a"
        api_key_secret_env = "NOPE"
        [accounts.no-file]
        provider = "soda"
        api_key_id = "a"
        api_key_secret_file = "missing"
        """,
    )
    loaded = load_accounts(path, environ=ENV)
    by_label = {a.label: a for a in loaded.accounts}
    assert by_label["good"].error is None
    assert isinstance(by_label["good"].provider, KubiyaProvider)
    no_env, no_file = by_label["no-env"], by_label["no-file"]
    assert no_env.error is not None
    assert "NOPE" in no_env.error.message
    assert no_file.error is not None
    assert "missing" in no_file.error.message
    assert no_env.credentials == (("api_key_id", "inline"), ("api_key_secret", "env NOPE"))
    for account in (no_env, no_file):
        assert isinstance(account.provider, RunnerProvider)
        with pytest.raises(AccountUnavailable) as info:
            await account.provider.get_runner("x")
        assert info.value.account == account.label
        with pytest.raises(AccountUnavailable):
            async for _ in account.provider.list_runners():
                pass
    async with loaded.hub() as hub:
        inventory = await hub.inventory(accounts=["no-env", "no-file"])
    assert set(inventory.errors) == {"no-env", "no-file"}


def test_env_file_beside_the_accounts_file(tmp_path: Path) -> None:
    """env_file supplies *_env variables the environment lacks; the environment wins."""
    (tmp_path / "secrets.env").write_text(
        "# sandbox secrets\nexport KEY_A='from-file'\nKEY_B=from-file-b\n", encoding="utf-8"
    )
    path = write(
        tmp_path,
        """
        env_file = "secrets.env"
        [accounts.a]
        provider = "kubiya"
        api_key_env = "KEY_A"
        [accounts.b]
        provider = "kubiya"
        api_key_env = "KEY_B"
        [accounts.c]
        provider = "kubiya"
        api_key_env = "KEY_C"
        """,
    )
    loaded = load_accounts(path, environ={"KEY_B": "from-env"})
    by_label = {a.label: a for a in loaded.accounts}
    assert by_label["a"].error is None
    assert by_label["b"].error is None
    assert by_label["c"].error is not None
    assert "nor in secrets.env" in by_label["c"].error.message


def test_insecure_http_needs_the_key_or_the_variable(tmp_path: Path) -> None:
    """Plain http to a remote host is refused naming the key and variable; either allows it."""
    body = """
        [accounts.far]
        provider = "kubiya"
        base_url = "http://runners.example.com"
        api_key_env = "KUBIYA_KEY"
        """
    with pytest.raises(errors.UsageError, match="allow_insecure_http = true") as info:
        load_accounts(write(tmp_path, body), environ=ENV)
    assert "=True" not in str(info.value)
    allowed = load_accounts(
        write(tmp_path, body), environ={**ENV, "RUNNERHUB_ALLOW_INSECURE_HTTP": "1"}
    )
    assert allowed.accounts[0].error is None
    in_file = load_accounts(write(tmp_path, body + "allow_insecure_http = true\n"), environ=ENV)
    assert in_file.accounts[0].error is None


def test_environment_accounts_come_from_the_registry() -> None:
    """Without a file, each vendor whose variables are set is an account; incomplete ones
    are unavailable, naming what is missing; no variable, no account."""
    env = {"KUBIYA_API_KEY": "k3y", "SODA_API_KEY_ID": "only-the-id"}
    loaded = accounts_from_env(env)
    by_vendor = {a.vendor: a for a in loaded.accounts}
    assert set(by_vendor) == {"kubiya", "soda"}
    assert by_vendor["kubiya"].error is None
    assert by_vendor["kubiya"].credentials == (("api_key", "env KUBIYA_API_KEY"),)
    assert by_vendor["soda"].error is not None
    assert "SODA_API_KEY_SECRET" in by_vendor["soda"].error.message
    assert accounts_from_env({}).accounts == ()


def test_rate_limit_windows_one_or_many(tmp_path: Path) -> None:
    """A rate limit is one {max_requests, period_seconds} table or a list of them; a
    non-positive window is refused with its path."""
    path = write(
        tmp_path,
        """
        [accounts.k]
        provider = "kubiya"
        api_key_env = "KUBIYA_KEY"
        [accounts.k.rate_limits]
        get_runner = {max_requests = 3, period_seconds = 1}
        "*" = [{max_requests = 5, period_seconds = 1}, {max_requests = 50, period_seconds = 60}]
        """,
    )
    (account,) = load_accounts(path, environ=ENV).accounts
    assert account.error is None
    bad = write(
        tmp_path,
        '[accounts.k]\nprovider = "kubiya"\napi_key_env = "KUBIYA_KEY"\n'
        "rate_limits = {get_runner = {max_requests = 0, period_seconds = 1}}\n",
    )
    with pytest.raises(errors.UsageError, match=r"accounts\.k\.rate_limits\.get_runner"):
        load_accounts(bad, environ=ENV)


def test_file_options_are_the_scalar_client_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keys an account may set come from ClientOptions (declared once), also when one of
    its annotations cannot be resolved at run time."""
    import typing

    from runnerhub import config

    expected = {
        "allow_insecure_http",
        "base_url",
        "connector_limit",
        "deadline",
        "limit_key",
        "max_response_bytes",
        "max_retries",
        "timeout",
    }
    resolved = dict(config._client_options())
    assert set(resolved) == expected

    def unresolvable(*args: object, **kwargs: object) -> dict[str, object]:
        raise NameError("a name imported only for type checkers")

    config._client_options.cache_clear()
    monkeypatch.setattr(typing, "get_type_hints", unresolvable)
    try:
        assert dict(config._client_options()) == resolved
    finally:
        config._client_options.cache_clear()


async def test_a_github_account_by_org_repo_or_enterprise(tmp_path: Path) -> None:
    """provider = "github" takes one scope key and token_env; the hub lists each scope's runners;
    a token written inline, or two scopes, is refused naming the account."""
    sandbox = Sandbox(seed=4)
    org = sandbox.add_org("github", "gh-acme", runners=120)
    repo = sandbox.add_org("github", "acme/widgets", runners=3)
    enterprise = sandbox.add_org("github", "acme-corp", runners=2, scope="enterprise")
    env = {"GH_ORG_TOKEN": org.token, "GH_REPO_TOKEN": repo.token, "GH_ENT": enterprise.token}
    async with sandbox.serve():
        base_url = sandbox.url("github")
        path = write(
            tmp_path,
            f"""
            [defaults]
            base_url = "{base_url}"
            [accounts.gh-org]
            provider = "github"
            org = "gh-acme"
            token_env = "GH_ORG_TOKEN"
            [accounts.gh-repo]
            provider = "github"
            repo = "acme/widgets"
            token_env = "GH_REPO_TOKEN"
            [accounts.gh-enterprise]
            provider = "github"
            enterprise = "acme-corp"
            token_env = "GH_ENT"
            """,
        )
        async with load_hub(path, environ=env) as hub:
            assert all(isinstance(p, GitHubProvider) for p in hub.providers)
            inventory = await hub.inventory()
    assert inventory.by_account() == {"gh-org": 120, "gh-repo": 3, "gh-enterprise": 2}
    assert inventory.errors == {}
    for body, message in (
        ('org = "gh-acme"\ntoken = "inline"', "may not be written"),
        ('org = "a"\nrepo = "a/b"\ntoken_env = "GH_ENT"', "exactly one of org=, repo="),
    ):
        bad = write(tmp_path, f'[accounts.gh-bad]\nprovider = "github"\n{body}\n')
        with pytest.raises(errors.UsageError, match=message) as info:
            load_hub(bad, environ=env)
        assert "gh-bad" in str(info.value)
        assert "inline" not in str(info.value)
