"""The pytest plugin as a user meets it: a throwaway project in a fresh venv.

The venv gets ``runnerhub[sandbox]`` from this checkout plus pytest,
pytest-asyncio and anyio, nothing else; the project's conftest names the plugin
and sets no ``asyncio_mode``. pip's wheel cache keeps reruns fast.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = 'pytest_plugins = ["runnerhub.sandbox.pytest_plugin"]\n'

PYPROJECT = """\
[tool.pytest.ini_options]
# No asyncio_mode: pytest-asyncio's default (strict) mode.
asyncio_default_fixture_loop_scope = "function"
"""

TESTS = '''\
import base64
import json
import urllib.request

import pytest

from runnerhub import KubiyaProvider, SodaProvider


def test_sync(runnerhub_sandbox):
    org = runnerhub_sandbox.add_org("soda", "acme", runners=3)
    pair = f"{org.api_key_id}:{org.api_key_secret}".encode()
    request = urllib.request.Request(
        runnerhub_sandbox.url("soda") + "/api/v1/runners",
        headers={"Authorization": "Basic " + base64.b64encode(pair).decode()},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert json.load(resp)["totalElements"] == 3
    assert runnerhub_sandbox.base_url.startswith("http://127.0.0.1:")


@pytest.mark.asyncio
async def test_asyncio(runnerhub_sandbox):
    runnerhub_sandbox.add_org("kubiya", "prod", runners=4)
    (account,) = runnerhub_sandbox.accounts()
    async with KubiyaProvider(
        **account.credentials, base_url=runnerhub_sandbox.url("kubiya")
    ) as kubiya:
        assert len([r async for r in kubiya.list_runners()]) == 4


@pytest.mark.anyio
async def test_anyio(runnerhub_sandbox):
    runnerhub_sandbox.add_org("soda", "acme", runners=5)
    (account,) = runnerhub_sandbox.accounts()
    async with SodaProvider(**account.credentials, base_url=runnerhub_sandbox.url("soda")) as soda:
        assert len([r async for r in soda.list_runners()]) == 5
'''


def _clean_env() -> dict[str, str]:
    """This process's environment without what would point the venv at this checkout."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
    return {
        k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("COV_CORE")
    }


@pytest.mark.timeout(600)
def test_plugin_in_a_fresh_project(tmp_path: Path) -> None:
    """``pip install 'runnerhub[sandbox]' pytest``: a sync, an asyncio and an anyio test pass."""
    venv = tmp_path / "venv"
    env = _clean_env()
    subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, env=env
    )
    python = venv / "bin" / "python"
    install = subprocess.run(  # noqa: S603 - fixed argv, our own interpreter's pip
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"{ROOT}[sandbox]",
            "pytest",
            "pytest-asyncio",
            "anyio",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert "does not provide the extra" not in install.stderr
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (project / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (project / "test_with_sandbox.py").write_text(TESTS, encoding="utf-8")
    result = subprocess.run(  # noqa: S603 - fixed argv, the venv's interpreter
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
