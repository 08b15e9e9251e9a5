"""Queued (WAITING) trials on one SQLite file popped by several processes at the same instant:
each is handed to exactly one of them. Optuna pops a queued trial by reading its state and
setting it RUNNING, relying on a row lock that SQLite does not have; ``tuner.storage`` makes
SQLite transactions take the write lock when they begin. Without that, four processes asking for
40 queued trials got 28 distinct ones, and a worker that ran a trial another one had already
finished failed with "Cannot tell a COMPLETE trial" (tests/scaleout/test_concurrent_start.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import optuna

from tuner.storage import open_storage

PROCESSES, EACH = 4, 10

ASK = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
from tuner.storage import open_storage
url, start, each = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
study = optuna.load_study(study_name="queue", storage=open_storage(url))
while time.time() < start:  # every process asks at the same instant
    pass
print(json.dumps([study.ask()._trial_id for _ in range(each)]))
"""


def test_each_queued_trial_goes_to_one_process(tmp_path):
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    study = optuna.create_study(study_name="queue", storage=open_storage(url))
    for i in range(PROCESSES * EACH):
        study.enqueue_trial({"x": float(i)})
    start = time.time() + 6  # after every process has imported and opened the storage
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", ASK, url, str(start), str(EACH)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(PROCESSES)]
    asked = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        asked += json.loads(out.strip().splitlines()[-1])
    assert len(asked) == PROCESSES * EACH
    assert len(set(asked)) == len(asked), "a queued trial was handed to two processes"
    assert all(t.state.name == "RUNNING" for t in study.get_trials(deepcopy=False))
