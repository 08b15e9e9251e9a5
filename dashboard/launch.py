"""Start the dashboard server: what ``tuner dashboard`` and ``python -m dashboard`` run.

    python -m dashboard [--storage URL] [--port 8501] [--address 127.0.0.1]

``tuner dashboard`` finds :func:`launch` through the ``less_tuner.dashboard`` entry point group
(see ``pyproject.toml``), so the tuner never imports the dashboard. The storage and the profiles
folder reach the app through ``$TUNER_STORAGE`` and ``$TUNER_PROFILES``. Streamlit runs headless
(no browser is opened; it prints the URL) and sends no usage statistics.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from tuner.errors import TunerError, UsageError
from tuner.storage import STORAGE_ENV, check_url, resolve_url

from . import PROFILES_ENV

__all__ = ["APP", "command", "launch", "main"]

APP = Path(__file__).resolve().with_name("app.py")
NEEDS = ("streamlit", "plotly", "pandas")
"""What the app imports beyond the tuner: the ``dashboard`` extra."""


def command(port: int = 8501, address: str = "127.0.0.1") -> list[str]:
    """The ``streamlit run`` command line of the app."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
            "--server.address", address, "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"]


def launch(storage: str | None = None, *, port: int = 8501, address: str = "127.0.0.1",
           profiles: str | os.PathLike | None = None) -> int:
    """Serve the dashboard until interrupted; returns Streamlit's exit code."""
    if not 0 < port < 65536:
        raise UsageError(f"--port must be in 1..65535, got {port}.")
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise TunerError(f"the dashboard needs {', '.join(missing)}: pip install "
                         "'less-tuner[dashboard]' (from a checkout: pip install -e '.[dashboard]').")
    check_url(resolve_url(storage))  # a malformed URL fails here; a missing database in the page
    env = dict(os.environ)
    if storage:
        env[STORAGE_ENV] = storage
    if profiles:
        env[PROFILES_ENV] = str(profiles)
    return subprocess.call(command(port, address), env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard",
                                     description="Serve the dashboard (Streamlit).")
    parser.add_argument("--storage", help="SQLAlchemy URL of the study database")
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--address", default="127.0.0.1", help="0.0.0.0 to serve other machines")
    parser.add_argument("--profiles", help="folder exported profiles are saved into")
    args = parser.parse_args(argv)
    try:
        return launch(args.storage, port=args.port, address=args.address, profiles=args.profiles)
    except TunerError as err:
        print(f"Error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
