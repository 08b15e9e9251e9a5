"""`tuner dashboard` and the launcher: the command line, the environment, one-line errors."""

from __future__ import annotations

import sys

from typer.testing import CliRunner

from dashboard import launch
from tuner.cli import app


def test_command_serves_the_app_headless():
    cmd = launch.command(8600, "127.0.0.1")
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"] and cmd[4] == str(launch.APP)
    flags = dict(zip(cmd[5::2], cmd[6::2]))
    assert flags["--server.port"] == "8600" and flags["--server.address"] == "127.0.0.1"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"


def test_cli_passes_storage_and_port(monkeypatch, tmp_path):
    seen = {}

    def fake_call(cmd, env):
        seen.update(cmd=cmd, env=env)
        return 0

    monkeypatch.setattr(launch.subprocess, "call", fake_call)
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = CliRunner().invoke(app, ["dashboard", "--storage", url, "--port", "8765"])
    assert result.exit_code == 0, result.output
    assert seen["env"]["TUNER_STORAGE"] == url
    flags = dict(zip(seen["cmd"][5::2], seen["cmd"][6::2]))
    assert flags["--server.port"] == "8765" and flags["--server.address"] == "127.0.0.1"
    CliRunner().invoke(app, ["dashboard", "--address", "0.0.0.0"])  # e.g. in a container
    assert "0.0.0.0" in seen["cmd"]


def test_cli_errors_are_one_line(monkeypatch):
    monkeypatch.setattr(launch.subprocess, "call", lambda *a, **k: 0)
    result = CliRunner().invoke(app, ["dashboard", "--storage", "not a url"])
    assert result.exit_code == 1 and "malformed storage URL" in result.stderr
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, ["dashboard", "--port", "70000"])
    assert result.exit_code == 2 and "--port must be in 1..65535" in result.stderr
