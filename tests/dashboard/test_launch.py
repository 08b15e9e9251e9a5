"""`tuner dashboard` and the launcher: the command line, the environment, one-line errors, and the
direction of the imports (the tuner finds the launcher through an entry point)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from dashboard import launch
from tuner.errors import TunerError


def test_command_serves_the_app_headless():
    cmd = launch.command(8600, "127.0.0.1")
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"] and cmd[4] == str(launch.APP)
    flags = dict(zip(cmd[5::2], cmd[6::2]))
    assert flags["--server.port"] == "8600" and flags["--server.address"] == "127.0.0.1"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"


def test_cli_passes_storage_and_port(monkeypatch, tmp_path, cli):
    seen = {}

    def fake_call(cmd, env):
        seen.update(cmd=cmd, env=env)
        return 0

    monkeypatch.setattr(launch.subprocess, "call", fake_call)
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = cli(["dashboard", "--storage", url, "--port", "8765"])
    assert result.exit_code == 0, result.output
    assert seen["env"]["TUNER_STORAGE"] == url
    flags = dict(zip(seen["cmd"][5::2], seen["cmd"][6::2]))
    assert flags["--server.port"] == "8765" and flags["--server.address"] == "127.0.0.1"
    cli(["dashboard", "--address", "0.0.0.0"])  # e.g. in a container
    assert "0.0.0.0" in seen["cmd"]


def test_cli_errors_are_one_line(monkeypatch, cli):
    monkeypatch.setattr(launch.subprocess, "call", lambda *a, **k: 0)
    result = cli(["dashboard", "--storage", "not a url"])
    assert result.exit_code == 1 and "malformed storage URL" in result.stderr
    assert "Traceback" not in result.output
    result = cli(["dashboard", "--port", "70000"])
    assert result.exit_code == 2 and "--port must be in 1..65535" in result.stderr


def test_without_the_dashboard_extra_one_line_says_what_to_install(monkeypatch, cli):
    monkeypatch.setattr(launch.subprocess, "call", lambda *a, **k: 0)
    real = launch.importlib.util.find_spec
    monkeypatch.setattr(launch.importlib.util, "find_spec",
                        lambda name, *a: None if name == "streamlit" else real(name, *a))
    with pytest.raises(TunerError, match=re.escape("needs streamlit: pip install "
                                                   "'less-tuner[dashboard]'")):
        launch.launch()
    result = cli(["dashboard"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "the dashboard needs streamlit: pip install 'less-tuner[dashboard]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_without_the_entry_point_one_line_says_what_to_install(monkeypatch, cli):
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: ())
    result = cli(["dashboard"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "the dashboard is not installed: pip install 'less-tuner[dashboard]'" in result.stderr


def test_the_tuner_does_not_import_the_dashboard():
    """`tuner dashboard` finds the launcher through its entry point, which names this module."""
    from importlib.metadata import entry_points

    (found,) = entry_points(group="less_tuner.dashboard", name="launch")
    assert found.load() is launch.launch
    code = ("import sys, tuner, tuner.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dashboard'))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]", run.stdout


def test_python_m_dashboard_is_the_launcher():
    run = subprocess.run([sys.executable, "-m", "dashboard", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "usage: python -m dashboard" in run.stdout and "--storage" in run.stdout
