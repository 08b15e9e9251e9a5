"""Studies: create or resume, measure the full-step baseline once, run trials, and read them back.

A study is one Optuna study per (task, model, strategy, decoding settings). Its settings are stored
as study attributes; resuming with different ones is refused with a message naming the difference.
Every trial records accuracy, NFE, speed-up, quality-per-step and per-example outcomes as user
attributes whatever the objective, so a Pareto front exists for every study.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import socket
import threading
import time
import warnings
from collections import Counter
from contextlib import contextmanager, nullcontext
from functools import cached_property
from typing import Any, Callable, Iterator

import optuna
from optuna.trial import FrozenTrial, TrialState

import sampler
from sampler import DecodingSettings, DiffusionModel, SamplerError, make_strategy

from .cache import DEFAULT_BYTES
from .engine import EvalResult
from .errors import StudyMismatchError, TunerError, UsageError
from .evaluation import Evaluation
from .figures import Baseline, quality_per_step, relative_figures
from .pareto import front, hypervolume, trial_metrics
from .samplers import make_sampler
from .family import AUTO, StudySpace
from .spec import StudySpec
from .storage import check_url, mask_url, open_storage, resolve_url
from .tasks import hash_examples

__all__ = ["StudyRunner", "Baseline", "quality_per_step", "front", "default_study_name",
           "BASELINES_STUDY", "trial_metrics", "trial_settings", "trial_strategy", "trial_arm", "searched_values", "format_values", "hypervolume", "run_to_target",
           "count_states", "fail_stale", "WORKER"]

BASELINES_STUDY = "__baselines__"
"""A study holding no trials: its attributes store full-step baselines, shared by all studies."""

WORKER = f"{socket.gethostname()}:{os.getpid()}"
"""This process, as recorded in each trial's ``worker`` attribute (host:pid)."""

optuna.logging.set_verbosity(optuna.logging.WARNING)


def default_study_name(spec: StudySpec) -> str:
    model = (spec.model or "model").rstrip("/").split("/")[-1]
    strategy = "-".join([AUTO, *spec.strategies]) if spec.strategy == AUTO and spec.strategies \
        else spec.strategy
    return f"{spec.task}-{model}-{strategy}-{spec.objective}"


def trial_settings(spec: StudySpec, trial: FrozenTrial) -> tuple[dict[str, Any], DecodingSettings]:
    """(strategy params, decoding settings) a trial decoded with: the spec's settings, with the
    decoding settings the trial searched (``[search] cache = [...]``) applied."""
    params = dict(trial.user_attrs["params"])
    return params, dataclasses.replace(spec.decoding, **trial.user_attrs.get("decoding", {}))


def trial_strategy(spec: StudySpec, trial: FrozenTrial) -> str:
    """The strategy a trial decoded with: its ``strategy`` attribute (a study over several
    strategies records it on every trial), else the study's own strategy."""
    return trial.user_attrs.get("strategy") or spec.strategy


def trial_arm(spec: StudySpec, trial: FrozenTrial) -> str:
    """The member of the studied family a trial belongs to (its ``arm`` attribute): a strategy
    name, or ``<strategy>+ext`` for the strategy with its extensions searched. Trials of a
    single-strategy study (and of studies made before arms existed) belong to the study's own."""
    return trial.user_attrs.get("arm") or trial_strategy(spec, trial)


def searched_values(trial: FrozenTrial) -> dict[str, Any]:
    """Everything the study chose for this trial, for display: the strategy params and any
    searched decoding setting (e.g. ``cache``)."""
    return {**(trial.user_attrs.get("params") or {}), **trial.user_attrs.get("decoding", {})}


def format_values(values: dict[str, Any]) -> str:
    """``name=value, ...`` with floats to 4 significant digits (tables, captions)."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in values.items())


class StudyRunner:
    """One study in one storage: its identity, the full-step baselines, creating or resuming it,
    and running its trials. What it measures with is its :class:`~tuner.evaluation.Evaluation`
    (``runner.evaluation``: model, task, splits, evaluators)."""

    def __init__(self, spec: StudySpec, *, storage: str | None = None, study_name: str | None = None,
                 device: str | None = None, model: DiffusionModel | None = None,
                 cache_bytes: int = DEFAULT_BYTES, reuse: bool = True, racing: bool = True,
                 worker: str = WORKER, tuning: bool = True) -> None:
        self.spec = spec
        self.worker = worker  # this process (host:pid): seeds a joining process's sampler apart
        self.recovered = 0  # trials of dead workers failed (and queued again) by prepare()
        self.evaluation = Evaluation(spec, device=device, model=model, cache_bytes=cache_bytes,
                                     reuse=reuse)
        # what the trials search (``tuning=False``: a runner that only measures, e.g. `tuner eval`)
        self.family = StudySpace(spec.strategy, spec.strategies, spec.decoding, spec.search) \
            if tuning else None
        self.url = resolve_url(storage)
        check_url(self.url)
        self.study_name = study_name or default_study_name(spec)
        self.racing = racing

    @property
    def space(self):
        """The searched dimensions of a one-strategy study (its only arm)."""
        return self._single_arm().space

    @property
    def fixed(self) -> dict[str, Any]:
        """The fixed params of a one-strategy study (its only arm)."""
        return self._single_arm().fixed

    def _single_arm(self):
        if self.family is None or self.family.multi:
            raise TunerError(f"study {self.study_name!r} searches "
                             f"{'nothing' if self.family is None else 'several strategies'}; "
                             "read runner.family.arms.")
        return self.family.arms[self.family.names[0]]

    @cached_property
    def storage(self) -> optuna.storages.RDBStorage:
        """Opened on first use, so that a mistake found earlier leaves no database behind."""
        return open_storage(self.url)

    @property
    def url_masked(self) -> str:
        return mask_url(self.url)

    def check_model(self) -> DiffusionModel:
        """Load the model and check that it can decode every setting the study may try (a block
        cache needs a model with one), before anything is written."""
        model = self.evaluation.model
        caches = self.family.caches if self.family else {self.spec.decoding.cache}
        if caches - {"none"} and not model.supports_cache:
            raise UsageError(f"cache={sorted(caches - {'none'})[0]!r} needs a model with a block "
                             f"KV cache (native LLaDA or Dream); model {model.name!r} "
                             f"({model.kind}) has none: use cache = \"none\".")
        self.evaluation.check_fits("tune")
        return model

    # ---- what identifies a study --------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        s, ev = self.spec, self.evaluation
        return {"task": s.task, "model": ev.model_name, "strategy": s.strategy,
                "strategies": list(self.family.names) if self.family and self.family.multi
                else None,
                "objective": s.objective, "gamma": s.gamma, "tolerance": s.tolerance,
                "accuracy_floor": s.accuracy_floor, "n_tune": s.n_tune,
                "decoding": s.decoding.to_dict(), "search": dict(s.search),
                "data_hash": ev.data_hash, "model_fingerprint": ev.model_fingerprint,
                "version": sampler.__version__}

    def spec_dict(self) -> dict[str, Any]:
        """The full spec, stored with the study so that validate / export can rebuild it."""
        return self.spec.to_dict() | {"model": self.evaluation.model_name}

    @classmethod
    def from_study(cls, study_name: str, *, storage: str | None = None, **kwargs: Any) -> "StudyRunner":
        """A runner for an existing study, with the spec it was created with."""
        url = resolve_url(storage)
        store = open_storage(url, create=False)
        try:
            study = optuna.load_study(study_name=study_name, storage=store)
        except KeyError:
            raise UsageError(f"no study named {study_name!r} in {mask_url(url)}; "
                             "`tuner studies` lists them.") from None
        data = study.user_attrs.get("spec")
        if not data:
            raise UsageError(f"study {study_name!r} was not created by `tuner optimize`.")
        return cls(StudySpec.from_dict(data), storage=url, study_name=study_name, **kwargs)

    def _check_existing(self) -> None:
        """If the study exists, check that it was created with these settings."""
        try:
            study = optuna.load_study(study_name=self.study_name, storage=self.storage)
        except KeyError:
            return
        self._check_identity(study)

    def _check_identity(self, study: optuna.Study) -> None:
        stored = study.user_attrs.get("identity")
        if stored is None:
            return
        mine = json.loads(json.dumps(self.identity()))
        for key, value in mine.items():
            if key != "version" and stored.get(key) != value:
                raise StudyMismatchError(
                    f"study {self.study_name!r} was created with {key} = {stored.get(key)!r}, not "
                    f"{value!r}; use another --study name or the original settings.")

    # ---- baseline -----------------------------------------------------------------------------
    @property
    def baseline_settings(self) -> DecodingSettings:
        """The spec's decoding settings without a block cache: full-step's are the reference."""
        return dataclasses.replace(self.spec.decoding, cache="none")

    def _baseline_key(self, split: str) -> str:
        ev = self.evaluation
        data = hash_examples(ev.examples(split))
        return json.dumps(["full_step", self.spec.task, ev.model_name, ev.model_fingerprint,
                           split, data, self.baseline_settings.to_dict()], sort_keys=True)

    def baseline(self, split: str = "tune", progress: Callable[[int, int], Any] | None = None) -> Baseline:
        """Full-step decoding on ``split``: read from the storage, or measured once and stored."""
        ev = self.evaluation
        self.check_model(), ev.check_fits(split)  # a bad model or data fails before any write
        store = optuna.create_study(storage=self.storage, study_name=BASELINES_STUDY,
                                    load_if_exists=True)
        key = self._baseline_key(split)
        if key in store.user_attrs:
            return Baseline.from_json(store.user_attrs[key])
        settings = self.baseline_settings
        result = ev.evaluator(split).run(sampler.strategies.Fixed.full_step(settings),
                                         settings=settings, progress=progress)
        if result.accuracy == 0:
            raise TunerError(f"full-step decoding scores 0 on the {split} split of task "
                             f"{self.spec.task!r}: model {ev.model_name!r} cannot do "
                             "this task, so there is nothing to tune.")
        base = Baseline(result.accuracy, result.mean_nfe, result.n,
                        [o.score for o in result.outcomes], result.tokens_per_forward)
        store.set_user_attr(key, base.to_json())
        return base

    # ---- the study ----------------------------------------------------------------------------
    def _sampler(self, resumed_at: int | None = None) -> optuna.samplers.BaseSampler:
        """The Optuna sampler of this process. The study's creator seeds it with the spec's seed,
        so a study run by one process from start to end is reproducible. A process that joins or
        resumes a study holding ``resumed_at`` trials seeds it with (seed, resumed_at, worker):
        it does not replay the points of the first run, and workers that start together (any
        number, on one study) explore different points. Several workers are not reproducible:
        which worker runs which trial, and when, is not."""
        conditional = bool(self.family and self.family.conditional)
        if resumed_at is None:
            return make_sampler(self.spec.sampler, self.spec.seed, conditional=conditional)
        mix = hashlib.sha256(json.dumps([self.spec.seed, resumed_at, self.worker]).encode())
        return make_sampler(self.spec.sampler, int.from_bytes(mix.digest()[:4], "little"),
                            conditional=conditional)

    def load(self) -> optuna.Study:
        """The existing study (no creation)."""
        try:
            return optuna.load_study(study_name=self.study_name, storage=self.storage,
                                     sampler=self._sampler())
        except KeyError:
            raise UsageError(f"no study named {self.study_name!r} in {self.url_masked}.") from None

    def create_or_resume(self, budget: int | None = None) -> optuna.Study:
        """The study, created (with its warm starts: at most ``budget``, default ``spec.trials``,
        so a run never leaves one queued and unrun) or resumed."""
        existing = {s.study_name for s in optuna.get_all_study_summaries(self.storage)}
        if self.study_name not in existing:
            try:
                study = optuna.create_study(storage=self.storage, study_name=self.study_name,
                                            directions=list(self.spec.objective_spec.directions),
                                            sampler=self._sampler())
            except optuna.exceptions.DuplicatedStudyError:
                pass  # another worker created it a moment ago: resume theirs
            else:
                return self._initialise(study, budget)
        study = optuna.load_study(study_name=self.study_name, storage=self.storage)
        self._check_identity(study)
        study.sampler = self._sampler(len(study.get_trials(deepcopy=False)))
        return study

    def prepare(self, progress: Callable[[int, int], Any] | None = None,
                budget: int | None = None) -> tuple[Baseline, optuna.Study]:
        """The tuning split's baseline (measured once) and the study (created or resumed), with
        the baseline recorded on it: what every way of running trials starts from. ``budget``:
        the trials this run will make (``--target``), when not ``spec.trials``."""
        self.check_model()
        self._check_existing()  # a resume with other settings is refused before any measuring
        baseline = self.baseline("tune", progress=progress)
        study = self.create_or_resume(budget)
        study.set_user_attr("baseline_tune", json.loads(baseline.to_json()) | {"scores": None})
        self.recovered = fail_stale(study)
        return baseline, study

    def _initialise(self, study: optuna.Study, budget: int | None = None) -> optuna.Study:
        """Metric names, identity, spec and warm starts of a study this process just created
        (only the creator enqueues, so concurrent workers never duplicate a warm start; no more
        of them than the trials to be run, ``budget`` or ``spec.trials``)."""
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2, still in 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(self.spec.objective_spec.metrics))
        study.set_user_attr("identity", self.identity())
        study.set_user_attr("spec", self.spec_dict())
        starts = self.family.warm_starts()
        limit = budget if budget is not None else self.spec.trials
        for params in starts if limit is None else starts[:limit]:
            study.enqueue_trial(params, user_attrs={"warm_start": True}, skip_if_exists=True)
        return study

    def objective(self, baseline: Baseline) -> Callable[[optuna.Trial], Any]:
        """The function Optuna calls per trial: decode the tuning split with the trial's params,
        record every metric, return the objective's values."""
        spec = self.spec
        floor = spec.floor(baseline.accuracy)
        evaluator = self.evaluation.evaluator("tune")

        def run(trial: optuna.Trial):
            trial.set_user_attr("worker", WORKER)
            choice = self.family.suggest(trial)
            params, settings = choice.params, choice.settings
            try:
                strategy = make_strategy(choice.strategy, params)
            except SamplerError as err:
                raise UsageError(str(err)) from None
            trial.set_user_attr("strategy", choice.strategy)
            trial.set_user_attr("arm", choice.arm)
            result = evaluator.run(strategy, settings=settings,
                                   floor=floor if self.racing else None)
            metrics = self._metrics(result, baseline, floor)
            trial.set_user_attr("params", params)
            if settings != spec.decoding:
                trial.set_user_attr("decoding", {k: v for k, v in settings.to_dict().items()
                                                 if getattr(spec.decoding, k) != v})
            trial.set_user_attr("metrics", metrics)
            trial.set_user_attr("outcomes", {"score": [o.score for o in result.outcomes],
                                             "nfe": [o.nfe for o in result.outcomes]})
            if floor is not None:
                trial.set_constraint("accuracy_floor", floor - metrics["accuracy"])
            return spec.objective_spec.values(metrics)

        return run

    def _metrics(self, result: EvalResult, baseline: Baseline, floor: float | None) -> dict[str, Any]:
        n_total = result.n_total
        right = result.accuracy * result.n
        # A raced trial is scored by the best accuracy it could still have reached.
        accuracy = result.accuracy if result.complete else (right + n_total - result.n) / n_total
        metrics = result.metrics()
        metrics.update(accuracy=accuracy, accuracy_used=result.accuracy,
                       **relative_figures(accuracy, result.mean_nfe, baseline, self.spec.gamma,
                                          result.tokens_per_forward),
                       feasible=floor is None or accuracy >= floor - 1e-12,
                       complete=result.complete)
        return metrics

    def optimize(self, *, on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
                 baseline_progress: Callable[[int, int], Any] | None = None,
                 target: int | None = None,
                 prepared: tuple[Baseline, optuna.Study] | None = None) -> optuna.Study:
        """Run ``spec.trials`` more trials (or until ``spec.timeout``) on the study; with
        ``target``, run trials until the study holds ``target`` complete ones, whichever
        worker ran them (see :func:`run_to_target`). ``prepared``: what :meth:`prepare` returned,
        when the caller already has it."""
        baseline, study = prepared or self.prepare(baseline_progress, budget=target)
        with InterruptGuard() as guard:
            objective = guard.objective(self.objective(baseline))
            callbacks = [guard.after_trial, *([on_trial] if on_trial else [])]
            if target is not None:
                run_to_target(study, objective, target, storage=self.storage,
                              timeout=self.spec.timeout, callbacks=callbacks,
                              waiting=guard.interruptible)
            else:
                study.optimize(objective, n_trials=self.spec.trials,
                               timeout=self.spec.timeout, callbacks=callbacks, catch=())
        return study


class InterruptGuard:
    """Ctrl-C (SIGINT) during a run of trials, at a moment Optuna can take it.

    While a trial's objective runs, Ctrl-C raises ``KeyboardInterrupt`` at once: Optuna marks the
    trial failed and re-raises, and the next run retries it. While Optuna records a trial (asks
    for it, tells its values) it is held until that is done, then raised (from the trial
    callback, or as the next objective starts): an interrupt inside Optuna's own bookkeeping left
    the trial half told and surfaced as an ``UnboundLocalError`` from Optuna instead of an
    interrupt. Only installed from the main thread over Python's default SIGINT handler (an
    ignored or custom SIGINT is left alone)."""

    def __init__(self) -> None:
        self.inside = False
        self.pending = False
        self._previous: Any = None

    def __enter__(self) -> "InterruptGuard":
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        if self.pending and exc[0] is None:  # held through the run's last bookkeeping
            raise KeyboardInterrupt

    def _handle(self, signum: int, frame: Any) -> None:
        if self.inside:
            raise KeyboardInterrupt
        self.pending = True

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A stretch where Ctrl-C may raise at once (a held one raises as it starts)."""
        if self.pending:
            raise KeyboardInterrupt
        self.inside = True
        try:
            yield
        finally:
            self.inside = False

    def objective(self, run: Callable[[optuna.Trial], Any]) -> Callable[[optuna.Trial], Any]:
        """``run`` with Ctrl-C raised inside it (and a held one raised as it starts)."""
        def guarded(trial: optuna.Trial) -> Any:
            with self.interruptible():
                return run(trial)

        return guarded

    def after_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """A trial callback: raise a Ctrl-C held while Optuna recorded the trial."""
        if self.pending:
            raise KeyboardInterrupt


def fail_stale(study: optuna.Study) -> int:
    """Fail the study's running trials whose worker stopped beating (killed, lost) for longer
    than the grace period; each is queued again for another worker (up to the storage's retry
    limit). Returns how many were failed. Every run that joins a study does this first, so a dead
    worker's trial neither stays RUNNING nor waits for the next ``--target`` run."""
    from optuna.storages import fail_stale_trials

    before = count_states(study)[TrialState.RUNNING]
    with warnings.catch_warnings():  # "experimental" since Optuna 2.9, still in 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        fail_stale_trials(study)
    return before - count_states(study)[TrialState.RUNNING]


def count_states(study: optuna.Study) -> Counter:
    """How many of the study's trials are in each state (``Counter`` keyed by ``TrialState``)."""
    return Counter(t.state for t in study.get_trials(deepcopy=False))


def run_to_target(study: optuna.Study, objective: Callable[[optuna.Trial], Any], target: int, *,
                  storage: optuna.storages.BaseStorage | None = None,
                  timeout: float | None = None, callbacks: list | None = None,
                  poll_s: float | None = None,
                  waiting: Callable[[], Any] = nullcontext) -> None:
    """Run trials one at a time until the study holds ``target`` complete trials.

    Meant for many workers on one study. A worker starts a trial while complete plus running
    trials fall short of the target, or while the retry of a trial whose worker died is waiting;
    otherwise it waits for the running trials of others, failing stale ones as it polls, so that a
    dead worker's trial is retried rather than left running. It returns once the target is met
    and nothing runs. ``storage`` (the study's) sets the polling interval to its heartbeat. Workers that look at the same moment may overshoot by a trial or so. ``waiting``: a context
    manager around each wait for the others' trials.
    """
    interval = storage.get_heartbeat_interval() if hasattr(
        storage, "get_heartbeat_interval") else None
    poll_s = poll_s or float(interval or 1)
    began = time.monotonic()
    while timeout is None or time.monotonic() - began < timeout:
        fail_stale(study)
        trials = study.get_trials(deepcopy=False)
        n = Counter(t.state for t in trials)
        done, running = n[TrialState.COMPLETE], n[TrialState.RUNNING]
        retry = any(t.state == TrialState.WAITING and "failed_trial" in t.system_attrs
                    for t in trials)
        if retry or done + running < target:
            study.optimize(objective, n_trials=1, callbacks=callbacks, catch=())
        elif done >= target and not running:
            return
        else:
            with waiting():  # e.g. InterruptGuard.interruptible: Ctrl-C while waiting
                time.sleep(poll_s)


