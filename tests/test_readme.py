"""The README's front door: its two commands exist and CI runs the test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
