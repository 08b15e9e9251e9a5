"""Several local worker processes on one study: each is a plain `tuner optimize` process pointed at
the same study and database (Optuna's RDB storage is the distributed engine; nothing else
coordinates them). SQLite cannot take concurrent writers, so this needs e.g. PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Callable, Sequence

import optuna
from optuna.trial import TrialState

from .errors import TunerError, UsageError
from .storage import is_sqlite, mask_url

__all__ = ["split_trials", "run_workers", "check_shared_storage"]


def check_shared_storage(url: str) -> None:
    if is_sqlite(url):
        raise UsageError(f"--workers needs a database several processes can write at once, and "
                         f"{mask_url(url)} is SQLite: pass --storage postgresql://USER:PASSWORD@"
                         "HOST/DB (see 'Scaling out' in the README).")


def split_trials(total: int, workers: int) -> list[int]:
    """``total`` trials over ``workers`` processes, the remainder on the first ones."""
    base, extra = divmod(total, workers)
    return [base + (i < extra) for i in range(workers) if base + (i < extra) > 0]


def run_workers(args: Sequence[str], trials: list[int], study: optuna.Study,
                on_progress: Callable[[int], None] | None = None, poll_s: float = 1.0) -> None:
    """Start one `tuner optimize <args> --trials K` process per entry of ``trials`` and wait for
    all of them, reporting the study's count of finished trials. Raises if any worker failed."""
    start = sum(t.state.is_finished() for t in study.trials)
    procs = [subprocess.Popen([sys.executable, "-m", "tuner.cli", "optimize", *args,
                               "--trials", str(k)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for k in trials]
    try:
        while any(p.poll() is None for p in procs):
            time.sleep(poll_s)
            if on_progress is not None:
                done = sum(t.state.is_finished() for t in
                           study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,
                                                                     TrialState.FAIL,
                                                                     TrialState.PRUNED)))
                on_progress(done - start)
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
