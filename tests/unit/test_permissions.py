"""A permission this user lacks (another user's file in the way, e.g. root's runs/ in a shared checkout) is one
line on stderr and exit 3, never a traceback."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from chaoskit import cli


def test_a_permission_problem_is_one_line_naming_the_path_and_its_owner(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()

    def refused(_args: object) -> int:
        raise PermissionError(13, "Permission denied", str(runs / "20260101-suite"))

    monkeypatch.setattr(cli, "cmd_list", refused)
    assert cli.main(["list"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"chaoskit: Permission denied: {runs}/20260101-suite ({runs} belongs to "
                          f"{pwd.getpwuid(os.getuid()).pw_name})"), err
