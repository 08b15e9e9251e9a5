"""Ctrl-C during a run of trials (``tuner.study.InterruptGuard``): raised at once inside a
trial's objective (the trial fails and is retried later), held while Optuna records a trial and
raised right after, so Optuna's bookkeeping is never cut in the middle (which surfaced as an
``UnboundLocalError`` from Optuna and a traceback instead of exit 130)."""

from __future__ import annotations

import signal
import time

import optuna
import pytest

from tuner.study import InterruptGuard, run_to_target


def _study():
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.create_study()


def test_ctrl_c_inside_the_objective_fails_that_trial():
    study = _study()

    def objective(trial):
        if trial.number == 1:
            signal.raise_signal(signal.SIGINT)
            time.sleep(5)  # never reached: the guard raises at once
        return trial.suggest_float("x", 0, 1)

    with pytest.raises(KeyboardInterrupt), InterruptGuard() as guard:
        study.optimize(guard.objective(objective), n_trials=5, callbacks=[guard.after_trial])
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler given back


def test_ctrl_c_while_optuna_records_a_trial_waits_until_it_is_recorded():
    study = _study()
    arrived_during = []

    def while_recording(study, trial):  # a callback runs after the tell, outside the objective
        if trial.number == 0:
            signal.raise_signal(signal.SIGINT)
            arrived_during.append(trial.number)

    with pytest.raises(KeyboardInterrupt), InterruptGuard() as guard:
        study.optimize(guard.objective(lambda t: t.suggest_float("x", 0, 1)), n_trials=5,
                       callbacks=[while_recording, guard.after_trial])
    assert arrived_during == [0]
    assert [t.state.name for t in study.trials] == ["COMPLETE"]  # recorded whole, none started


def test_ctrl_c_while_waiting_for_other_workers_raises():
    study = _study()
    study.enqueue_trial({"x": 0.5})
    other = study.ask()  # another worker's running trial: this one only waits

    def interrupt_soon(*_):
        raise AssertionError("no trial should start")

    with pytest.raises(KeyboardInterrupt), InterruptGuard() as guard:
        signal.signal(signal.SIGALRM, lambda *_: signal.raise_signal(signal.SIGINT))
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        try:
            run_to_target(study, guard.objective(interrupt_soon), 1, poll_s=0.1,
                          waiting=guard.interruptible, timeout=30)  # a failure, not a hang
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
    assert other.number == 0


def test_an_ignored_sigint_is_left_alone():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with InterruptGuard():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
