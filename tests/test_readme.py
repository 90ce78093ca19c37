"""The README's front door: its commands, and every Python block run and type-checked.

Each ```python block runs as written against a served sandbox: credentials and
base URLs reach it through the environment variables ``from_env()`` reads, and
the only text replaced is the Redis URL (with a real local server's). Every
block also passes ``mypy --strict``.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from runnerhub.sandbox import Sandbox
from tests._redis_server import RedisServer, redis_server_binary

ROOT = Path(__file__).resolve().parent.parent
README_REDIS_URL = "redis://localhost:6379/0"


def python_blocks() -> list[str]:
    """The README's ```python blocks, dedented (some sit inside list items), in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"^( *)```python\n(.*?)^\1```", text, flags=re.S | re.M)
    return [textwrap.dedent(body) for _, body in found]


@pytest.fixture
def readme_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A served sandbox with a Soda, a Kubiya and a GitHub org, their credentials in the env."""
    sandbox = Sandbox(seed=21)
    sandbox.add_org("soda", "soda-eu", runners=30)
    sandbox.add_org("kubiya", "kubiya-prod", runners=5, unhealthy=1)
    sandbox.add_org("github", "gh-acme", runners=12)
    for name in ("SODA_TOKEN", "SODA_REGION", "GITHUB_REPOSITORY", "GITHUB_ENTERPRISE"):
        monkeypatch.delenv(name, raising=False)
    with sandbox.serve_in_thread():
        soda, kubiya, github = sandbox.accounts()
        monkeypatch.setenv("SODA_API_KEY_ID", soda.credentials["api_key_id"])
        monkeypatch.setenv("SODA_API_KEY_SECRET", soda.credentials["api_key_secret"])
        monkeypatch.setenv("SODA_BASE_URL", sandbox.url("soda"))
        monkeypatch.setenv("KUBIYA_API_KEY", kubiya.credentials["api_key"])
        monkeypatch.setenv("KUBIYA_BASE_URL", sandbox.url("kubiya"))
        monkeypatch.setenv("GITHUB_TOKEN", github.credentials["token"])
        monkeypatch.setenv("GITHUB_ORG", github.options["org"])
        monkeypatch.setenv("GITHUB_API_URL", sandbox.url("github"))
        yield sandbox


def test_readme_has_python_blocks() -> None:
    """The quickstart, the Redis example and the sandbox example are all found."""
    blocks = python_blocks()
    assert len(blocks) >= 3
    assert "RunnerHub" in blocks[0]
    assert any(README_REDIS_URL in block for block in blocks)


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_python_block_runs(
    index: int, readme_env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """The block runs to completion against the sandbox, exactly as written."""
    code = python_blocks()[index]
    with contextlib.ExitStack() as stack:
        if README_REDIS_URL in code:
            if redis_server_binary() is None:
                pytest.skip("redis-server is not installed")
            code = code.replace(README_REDIS_URL, stack.enter_context(RedisServer()).url)
        block = compile(code, f"README.md python block {index + 1}", "exec")
        exec(block, {"__name__": "__main__"})  # noqa: S102 - the README's own code, as written
    assert capsys.readouterr().out
    assert readme_env.count() > 0 or "Sandbox(" in code


@pytest.mark.timeout(600)
def test_python_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    """Every block type-checks under ``mypy --strict`` against this checkout."""
    files = []
    for index, code in enumerate(python_blocks(), start=1):
        path = tmp_path / f"readme_block_{index}.py"
        path.write_text(code, encoding="utf-8")
        files.append(str(path))
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    result = subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def readme_commands() -> list[str]:
    """The shell commands of the README's ```sh blocks, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def test_first_command_runs_the_demo() -> None:
    """The first command installs the CLI extra and runs the demo."""
    first = readme_commands()[0]
    assert "[cli]" in first
    assert first.endswith("runnerhub demo")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    """The second command is the test command, and .ci/run runs exactly that line."""
    second = readme_commands()[1]
    assert "pytest" in second
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert second in ci_lines


def test_linked_files_exist() -> None:
    """Every relative link in the README points at a file in the repository."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#:]+)\)", text):
        assert (ROOT / target).exists(), target
