"""Several local worker processes on one study (``tuner optimize --workers W``).

Each worker is a process of this module running one :class:`WorkerJob`: the study's spec as
data, its name and the target count of complete trials; it joins the study and runs trials until
the study holds the target (:func:`~tuner.study.run_to_target`), as a ``tuner optimize --target``
worker of a cluster does. Optuna's RDB storage is the distributed engine; nothing else coordinates
them. SQLite cannot take concurrent writers, so this needs e.g. PostgreSQL. The storage URL
travels in the environment, never on a command line (a password there shows in ``ps``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from .cache import DEFAULT_BYTES
from .errors import TunerError, UsageError
from .storage import STORAGE_ENV, is_sqlite, mask_url

__all__ = ["WorkerJob", "run_workers", "check_shared_storage", "JOB_ENV"]

JOB_ENV = "TUNER_WORKER_JOB"
"""The environment variable that carries a worker's job (JSON)."""


@dataclass(frozen=True)
class WorkerJob:
    """What one worker process runs: trials of study ``study`` (spec ``spec``, as
    :meth:`~tuner.spec.StudySpec.to_dict` gives it) until it holds ``target`` complete ones."""

    spec: dict[str, Any]
    study: str
    target: int
    device: str | None = None
    reuse: bool = True
    racing: bool = True
    cache_bytes: int = DEFAULT_BYTES


def check_shared_storage(url: str) -> None:
    if is_sqlite(url):
        raise UsageError(f"--workers needs a database several processes can write at once, and "
                         f"{mask_url(url)} is SQLite: pass --storage postgresql://USER:PASSWORD@"
                         "HOST/DB (see 'Scaling out' in the README).")


def run_workers(job: WorkerJob, workers: int, study: optuna.Study, *, url: str,
                on_progress: Callable[[int], None] | None = None, poll_s: float = 1.0) -> None:
    """Start ``workers`` processes running ``job`` and wait for all of them, reporting the
    study's count of complete trials. Raises if any failed."""
    env = {**os.environ, STORAGE_ENV: url, JOB_ENV: json.dumps(asdict(job))}
    procs = [subprocess.Popen([sys.executable, "-m", "tuner.workers"], env=env,
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


def work(job: WorkerJob) -> None:
    """Run ``job`` in this process (the storage URL from the environment)."""
    from .spec import StudySpec
    from .study import StudyRunner

    runner = StudyRunner(StudySpec.from_dict(job.spec), study_name=job.study, device=job.device,
                         cache_bytes=job.cache_bytes, reuse=job.reuse, racing=job.racing)
    runner.optimize(target=job.target)


def main() -> int:
    from sampler import SamplerError

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        work(WorkerJob(**json.loads(os.environ[JOB_ENV])))
    except (TunerError, SamplerError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return getattr(error, "exit_code", 1)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
