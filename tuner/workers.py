"""Several local worker processes on one study: each is a plain `tuner optimize` process pointed at
the same study and database (Optuna's RDB storage is the distributed engine; nothing else
coordinates them). SQLite cannot take concurrent writers, so this needs e.g. PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Callable, Sequence

import optuna
from optuna.trial import TrialState

from .errors import TunerError, UsageError
from .storage import STORAGE_ENV, is_sqlite, mask_url

__all__ = ["run_workers", "check_shared_storage"]


def check_shared_storage(url: str) -> None:
    if is_sqlite(url):
        raise UsageError(f"--workers needs a database several processes can write at once, and "
                         f"{mask_url(url)} is SQLite: pass --storage postgresql://USER:PASSWORD@"
                         "HOST/DB (see 'Scaling out' in the README).")


def run_workers(args: Sequence[str], workers: int, study: optuna.Study, *, url: str,
                on_progress: Callable[[int], None] | None = None, poll_s: float = 1.0) -> None:
    """Start ``workers`` processes of `tuner optimize <args>` (``args`` carry ``--target``) and
    wait for all of them, reporting the study's count of complete trials. Raises if any failed."""
    env = {**os.environ, STORAGE_ENV: url}
    procs = [subprocess.Popen([sys.executable, "-m", "tuner.cli", "optimize", *args], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(workers)]
    try:
        while any(p.poll() is None for p in procs):
            time.sleep(poll_s)
            if on_progress is not None:
                on_progress(len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))))
    except KeyboardInterrupt:
        for p in procs:
            p.send_signal(2)  # SIGINT: each worker fails its running trial and exits cleanly
        for p in procs:
            p.wait(timeout=60)
        raise
    failed = [(i, p.returncode, (p.stderr.read() or "").strip().splitlines()) for i, p in
              enumerate(procs) if p.returncode != 0]
    if failed:
        i, code, lines = failed[0]
        last = lines[-1] if lines else "no message"
        raise TunerError(f"{len(failed)} of {len(procs)} workers failed; worker {i} exited "
                         f"{code}: {last}")
