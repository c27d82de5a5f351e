"""resolve_commit asks git: in a repository, and outside one."""

from __future__ import annotations

import subprocess

import pytest

from workflow.errors import NamingError
from workflow.naming import resolve_commit

pytestmark = pytest.mark.integration


def test_resolve_commit_from_git(tmp_path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("x")
    subprocess.run([*git, "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run([*git, "-C", str(tmp_path), "commit", "-qm", "c"], check=True)
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert resolve_commit({}, tmp_path) == head


def test_resolve_commit_outside_git(tmp_path) -> None:
    with pytest.raises(
        NamingError, match=r"cannot find the commit: 'git rev-parse HEAD'.*pass --commit"
    ):
        resolve_commit({}, tmp_path)
