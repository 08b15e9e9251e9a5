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
import socket
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

import sampler
from sampler import DecodingSettings, DiffusionModel, SamplerError, make_strategy

from .cache import LogitsCache
from .engine import EvalResult, Evaluator
from .errors import StudyMismatchError, TunerError, UsageError
from .space import search_space, suggest, warm_starts
from .spec import StudySpec
from .storage import check_url, open_storage, resolve_url
from .tasks import Task, get_task, hash_examples

__all__ = ["StudyRunner", "Baseline", "quality_per_step", "front", "default_study_name",
           "BASELINES_STUDY", "trial_metrics", "hypervolume", "run_to_target", "count_states",
           "WORKER"]

BASELINES_STUDY = "__baselines__"
"""A study holding no trials: its attributes store full-step baselines, shared by all studies."""

WORKER = f"{socket.gethostname()}:{os.getpid()}"
"""This process, as recorded in each trial's ``worker`` attribute (host:pid)."""

optuna.logging.set_verbosity(optuna.logging.WARNING)


def quality_per_step(accuracy: float, mean_nfe: float, baseline: "Baseline", gamma: float) -> float:
    """speedup x (accuracy / baseline accuracy) ** gamma."""
    return (baseline.mean_nfe / mean_nfe) * (accuracy / baseline.accuracy) ** gamma


def default_study_name(spec: StudySpec) -> str:
    model = (spec.model or "model").rstrip("/").split("/")[-1]
    return f"{spec.task}-{model}-{spec.strategy}-{spec.objective}"


@dataclass(frozen=True)
class Baseline:
    """Full-step decoding (one token per step, low-confidence order) on one split."""

    accuracy: float
    mean_nfe: float
    n: int
    scores: list[float] = field(default_factory=list, repr=False)

    def to_json(self) -> str:
        return json.dumps({"accuracy": self.accuracy, "mean_nfe": self.mean_nfe, "n": self.n,
                           "scores": self.scores})

    @classmethod
    def from_json(cls, text: str) -> "Baseline":
        return cls(**json.loads(text))


def trial_metrics(trial: FrozenTrial) -> dict[str, Any]:
    """The figures a trial recorded (empty for a trial that never finished its evaluation)."""
    return dict(trial.user_attrs.get("metrics", {}))


def front(trials: list[FrozenTrial], *, feasible_only: bool = True) -> list[FrozenTrial]:
    """Pareto-optimal complete trials on (max accuracy, min mean NFE), lowest NFE first."""
    points = []
    for t in trials:
        m = trial_metrics(t)
        if t.state != TrialState.COMPLETE or not m.get("complete"):
            continue
        if feasible_only and not m.get("feasible", True):
            continue
        points.append((t, m["accuracy"], m["mean_nfe"]))
    out = []
    for t, acc, nfe in points:
        dominated = any((a >= acc and n <= nfe) and (a > acc or n < nfe) for _, a, n in points)
        if not dominated:
            out.append((nfe, -acc, t.number, t))
    return [t for *_, t in sorted(out)]


def hypervolume(points: list[tuple[float, float]]) -> float:
    """Area dominated by ``(accuracy, nfe_fraction)`` points, ``nfe_fraction`` being mean NFE over
    full-step mean NFE, against the reference point (accuracy 0, fraction 1): 1.0 would be every
    answer right at no cost, full-step alone scores 0. Any points, dominated ones included."""
    pts = sorted((min(max(f, 0.0), 1.0), max(a, 0.0)) for a, f in points if f < 1.0)
    area, best_acc = 0.0, 0.0
    # sweep from the cheapest point: each point adds the accuracy it improves over the cheaper ones
    for i, (frac, acc) in enumerate(pts):
        best_acc = max(best_acc, acc)
        next_frac = pts[i + 1][0] if i + 1 < len(pts) else 1.0
        area += best_acc * (next_frac - frac)
    return area


class StudyRunner:
    """Everything needed to run, validate and export one study."""

    def __init__(self, spec: StudySpec, *, storage: str | None = None, study_name: str | None = None,
                 device: str | None = None, model: DiffusionModel | None = None,
                 cache_bytes: int = 1 << 30, reuse: bool = True, racing: bool = True) -> None:
        self.spec = spec
        self.task: Task = get_task(spec.task, data_dir=spec.data) if spec.data else get_task(spec.task)
        self.space, self.fixed = search_space(spec.strategy, spec.decoding, spec.search)
        self.url = resolve_url(storage)
        check_url(self.url)
        self.study_name = study_name or default_study_name(spec)
        self.device = device
        self._model = model
        self.cache = LogitsCache(cache_bytes) if reuse else None
        self.racing = racing
        self._evaluators: dict[tuple[str, bool], Evaluator] = {}

    @cached_property
    def storage(self) -> optuna.storages.RDBStorage:
        """Opened on first use, so that a mistake found earlier leaves no database behind."""
        return open_storage(self.url)

    # ---- data and model -----------------------------------------------------------------------
    @cached_property
    def model(self) -> DiffusionModel:
        if self._model is not None:
            return self._model
        try:
            return sampler.load_model(self.spec.model or self.task.default_model, device=self.device)
        except SamplerError as err:
            raise TunerError(str(err)) from None

    def examples(self, split: str):
        return self.task.examples(split, self.spec.n_tune if split == "tune" else self.spec.n_test)

    @cached_property
    def data_hash(self) -> str:
        return hash_examples(self.examples("tune"))

    def evaluator(self, split: str, *, reuse: bool = True) -> Evaluator:
        """The evaluator of ``split``; with ``reuse`` (and a runner built with reuse) it shares
        the study's forward-pass cache, without it every forward pass runs (honest timings)."""
        key = (split, reuse and self.cache is not None)
        if key not in self._evaluators:
            self._evaluators[key] = Evaluator(
                self.model, self.task, self.examples(split), self.spec.decoding,
                batch_size=self.spec.batch_size, cache=self.cache if key[1] else None)
        return self._evaluators[key]

    @cached_property
    def model_fingerprint(self) -> str:
        """A short hash of the weights (shapes and leading values of every tensor): a retrained
        model under the same name gets new baselines and cannot resume an old study."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.model.network.state_dict().items()):
            digest.update(f"{name}{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().flatten()[:64].float().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    # ---- what identifies a study --------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        s = self.spec
        return {"task": s.task, "model": s.model or self.task.default_model, "strategy": s.strategy,
                "objective": s.objective, "gamma": s.gamma, "tolerance": s.tolerance,
                "accuracy_floor": s.accuracy_floor, "n_tune": s.n_tune,
                "decoding": s.decoding.to_dict(), "search": dict(s.search),
                "data_hash": self.data_hash, "model_fingerprint": self.model_fingerprint,
                "version": sampler.__version__}

    def spec_dict(self) -> dict[str, Any]:
        """The full spec, stored with the study so that validate / export can rebuild it."""
        data = dataclasses.asdict(self.spec)
        data["decoding"] = self.spec.decoding.to_dict()
        data["model"] = data["model"] or self.task.default_model
        return data

    @classmethod
    def from_study(cls, study_name: str, *, storage: str | None = None, **kwargs: Any) -> "StudyRunner":
        """A runner for an existing study, with the spec it was created with."""
        url = resolve_url(storage)
        store = open_storage(url, create=False)
        try:
            study = optuna.load_study(study_name=study_name, storage=store)
        except KeyError:
            from .storage import mask_url

            raise UsageError(f"no study named {study_name!r} in {mask_url(url)}; "
                             "`tuner studies` lists them.") from None
        data = dict(study.user_attrs.get("spec") or {})
        if not data:
            raise UsageError(f"study {study_name!r} was not created by `tuner optimize`.")
        data["decoding"] = DecodingSettings.from_dict(data["decoding"])
        return cls(StudySpec(**data), storage=url, study_name=study_name, **kwargs)

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
    def _baseline_key(self, split: str) -> str:
        ident = self.identity()
        data = hash_examples(self.examples(split))
        return json.dumps(["full_step", ident["task"], ident["model"], ident["model_fingerprint"],
                           split, data, ident["decoding"]], sort_keys=True)

    def baseline(self, split: str = "tune", progress: Callable[[int, int], Any] | None = None) -> Baseline:
        """Full-step decoding on ``split``: read from the storage, or measured once and stored."""
        self.model, self.examples(split)  # fail on a bad model or data before touching storage
        store = optuna.create_study(storage=self.storage, study_name=BASELINES_STUDY,
                                    load_if_exists=True)
        key = self._baseline_key(split)
        if key in store.user_attrs:
            return Baseline.from_json(store.user_attrs[key])
        result = self.evaluator(split).run(sampler.strategies.Fixed.full_step(self.spec.decoding),
                                           progress=progress)
        if result.accuracy == 0:
            raise TunerError(f"full-step decoding scores 0 on the {split} split of task "
                             f"{self.spec.task!r}: model {self.identity()['model']!r} cannot do "
                             "this task, so there is nothing to tune.")
        base = Baseline(result.accuracy, result.mean_nfe, result.n,
                        [o.score for o in result.outcomes])
        store.set_user_attr(key, base.to_json())
        return base

    # ---- the study ----------------------------------------------------------------------------
    def _sampler(self) -> optuna.samplers.BaseSampler:
        seed = self.spec.seed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return {
                "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
                "gp": lambda: optuna.samplers.GPSampler(seed=seed),
                "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
                "random": lambda: optuna.samplers.RandomSampler(seed=seed),
            }[self.spec.sampler]()

    def load(self) -> optuna.Study:
        """The existing study (no creation)."""
        try:
            return optuna.load_study(study_name=self.study_name, storage=self.storage,
                                     sampler=self._sampler())
        except KeyError:
            raise UsageError(f"no study named {self.study_name!r} in {self.url_masked}.") from None

    @property
    def url_masked(self) -> str:
        from .storage import mask_url

        return mask_url(self.url)

    def create_or_resume(self) -> optuna.Study:
        directions = ["maximize", "minimize"] if self.spec.objective == "pareto" else (
            ["minimize"] if self.spec.objective == "budget" else ["maximize"])
        names = {"qps": ["quality_per_step"], "pareto": ["accuracy", "mean_nfe"],
                 "budget": ["mean_nfe"]}[self.spec.objective]
        existing = {s.study_name for s in optuna.get_all_study_summaries(self.storage)}
        if self.study_name not in existing:
            try:
                study = optuna.create_study(storage=self.storage, study_name=self.study_name,
                                            directions=directions, sampler=self._sampler())
            except optuna.exceptions.DuplicatedStudyError:
                pass  # another worker created it a moment ago: resume theirs
            else:
                return self._initialise(study, names)
        study = optuna.load_study(study_name=self.study_name, storage=self.storage,
                                  sampler=self._sampler())
        self._check_identity(study)
        return study

    def _initialise(self, study: optuna.Study, names: list[str]) -> optuna.Study:
        """Metric names, identity, spec and warm starts of a study this process just created
        (only the creator enqueues, so concurrent workers never duplicate a warm start)."""
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2, still in 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
        study.set_user_attr("identity", self.identity())
        study.set_user_attr("spec", self.spec_dict())
        for params in warm_starts(self.spec.strategy, self.space, self.spec.decoding):
            study.enqueue_trial(params, user_attrs={"warm_start": True}, skip_if_exists=True)
        return study

    def objective(self, baseline: Baseline) -> Callable[[optuna.Trial], Any]:
        spec = self.spec
        floor = spec.floor(baseline.accuracy)
        evaluator = self.evaluator("tune")

        def run(trial: optuna.Trial):
            trial.set_user_attr("worker", WORKER)
            params = suggest(trial, self.space, self.fixed)
            try:
                strategy = make_strategy(spec.strategy, params)
            except SamplerError as err:
                raise UsageError(str(err)) from None
            result = evaluator.run(strategy, floor=floor if self.racing else None)
            metrics = self._metrics(result, baseline, floor)
            trial.set_user_attr("params", params)
            trial.set_user_attr("metrics", metrics)
            trial.set_user_attr("outcomes", {"score": [o.score for o in result.outcomes],
                                             "nfe": [o.nfe for o in result.outcomes]})
            if floor is not None:
                trial.set_constraint("accuracy_floor", floor - metrics["accuracy"])
            if spec.objective == "pareto":
                return metrics["accuracy"], metrics["mean_nfe"]
            if spec.objective == "budget":
                return metrics["mean_nfe"]
            return metrics["quality_per_step"]

        return run

    def _metrics(self, result: EvalResult, baseline: Baseline, floor: float | None) -> dict[str, Any]:
        n_total = result.n_total
        right = result.accuracy * result.n
        # A raced trial is scored by the best accuracy it could still have reached.
        accuracy = result.accuracy if result.complete else (right + n_total - result.n) / n_total
        metrics = result.metrics()
        metrics.update(
            accuracy=accuracy,
            accuracy_used=result.accuracy,
            speedup=baseline.mean_nfe / result.mean_nfe,
            quality_per_step=quality_per_step(accuracy, result.mean_nfe, baseline, self.spec.gamma),
            baseline_accuracy=baseline.accuracy,
            baseline_mean_nfe=baseline.mean_nfe,
            feasible=floor is None or accuracy >= floor - 1e-12,
            complete=result.complete,
        )
        return metrics

    def optimize(self, *, on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
                 baseline_progress: Callable[[int, int], Any] | None = None,
                 target: int | None = None) -> optuna.Study:
        """Run ``spec.trials`` more trials (or until ``spec.timeout``) on the study; with
        ``target``, run trials until the study holds ``target`` complete ones, whichever
        worker ran them (see :func:`run_to_target`)."""
        baseline = self.baseline("tune", progress=baseline_progress)
        study = self.create_or_resume()
        study.set_user_attr("baseline_tune", json.loads(baseline.to_json()) | {"scores": None})
        callbacks = [on_trial] if on_trial else None
        if target is not None:
            run_to_target(study, self.objective(baseline), target, timeout=self.spec.timeout,
                          callbacks=callbacks)
        else:
            study.optimize(self.objective(baseline), n_trials=self.spec.trials,
                           timeout=self.spec.timeout, callbacks=callbacks, catch=())
        return study


def count_states(study: optuna.Study) -> Counter:
    """How many of the study's trials are in each state (``Counter`` keyed by ``TrialState``)."""
    return Counter(t.state for t in study.get_trials(deepcopy=False))


def run_to_target(study: optuna.Study, objective: Callable[[optuna.Trial], Any], target: int, *,
                  timeout: float | None = None, callbacks: list | None = None,
                  poll_s: float | None = None) -> None:
    """Run trials one at a time until the study holds ``target`` complete trials.

    Meant for many workers on one study. A worker starts a trial while complete plus running
    trials fall short of the target, or while the retry of a trial whose worker died is waiting;
    otherwise it waits for the running trials of others, failing stale ones as it polls, so that a
    dead worker's trial is retried rather than left running. It returns once the target is met
    and nothing runs. Workers that look at the same moment may overshoot by a trial or so.
    """
    from optuna.storages import fail_stale_trials

    interval = study._storage.get_heartbeat_interval() if hasattr(
        study._storage, "get_heartbeat_interval") else None
    poll_s = poll_s or float(interval or 1)
    began = time.monotonic()
    while timeout is None or time.monotonic() - began < timeout:
        with warnings.catch_warnings():  # "experimental" since Optuna 2.9, still in 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            fail_stale_trials(study)
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
            time.sleep(poll_s)


