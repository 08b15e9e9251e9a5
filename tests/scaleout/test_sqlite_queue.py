"""Queued (WAITING) trials on one SQLite file popped by several processes at the same instant:
each is handed to exactly one of them. Optuna pops a queued trial by reading its state and
setting it RUNNING, relying on a row lock that SQLite does not have; ``tuner.storage`` makes
SQLite transactions take the write lock when they begin. Without that, four processes asking for
40 queued trials got 28 distinct ones, and a worker that ran a trial another one had already
finished failed with "Cannot tell a COMPLETE trial" (tests/scaleout/test_concurrent_start.py)."""

from __future__ import annotations

import multiprocessing
import time
import warnings

import optuna

from tuner.storage import open_storage

PROCESSES, EACH = 4, 10


def _ask(url: str, start: float, out) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    study = optuna.load_study(study_name="queue", storage=open_storage(url))
    while time.time() < start:  # every process asks at the same instant
        pass
    out.put([study.ask()._trial_id for _ in range(EACH)])


def test_each_queued_trial_goes_to_one_process(tmp_path):
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    study = optuna.create_study(study_name="queue", storage=open_storage(url))
    for i in range(PROCESSES * EACH):
        study.enqueue_trial({"x": float(i)})
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start = time.time() + 4  # after every process has imported and opened the storage
    procs = [ctx.Process(target=_ask, args=(url, start, out)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    asked = [i for _ in procs for i in out.get(timeout=120)]
    for p in procs:
        p.join(timeout=60)
    assert len(asked) == PROCESSES * EACH
    assert len(set(asked)) == len(asked), "a queued trial was handed to two processes"
    assert all(t.state.name == "RUNNING" for t in study.get_trials(deepcopy=False))
