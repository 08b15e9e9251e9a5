"""Re-measure a study's Pareto front on the held-out split, and export a trial as a profile.

Held-out figures are measured by a plain decode, without the study's forward-pass reuse, so their
timings (``wall_s``, ``seconds_per_example``, ``tokens_per_second``) are what the profile costs in
production; a profile's metrics are these figures.
"""

from __future__ import annotations

import datetime
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial

import sampler
from sampler import ModelInfo, Profile, Provenance, make_strategy, save_profile

from .engine import production_timing
from .errors import UsageError
from .figures import relative_figures
from .pareto import front, trial_metrics
from .storage import mask_url
from .study import StudyRunner, trial_settings

__all__ = ["validate", "held_out", "export", "best_trial", "VALIDATION_PREFIX"]

VALIDATION_PREFIX = "validation:"


def held_out(study: optuna.Study, number: int, split: str = "test") -> dict[str, Any] | None:
    """The held-out figures of trial ``number``, if validated."""
    return study.user_attrs.get(f"{VALIDATION_PREFIX}{split}:{number}")


def _stored(study: optuna.Study, number: int, split: str) -> dict[str, Any] | None:
    """The held-out figures of trial ``number`` if they were timed without reuse (figures stored
    by earlier versions were timed with the study's cache: they are measured again)."""
    figures = held_out(study, number, split)
    return figures if figures and production_timing(figures) else None


def _validate_trial(runner: StudyRunner, study: optuna.Study, trial: FrozenTrial, split: str,
                    progress: Callable[[int, int], Any] | None = None) -> dict[str, Any]:
    """Decode ``split`` with the trial's params, without forward-pass reuse: the held-out
    timings are what the profile costs in production (reuse is exact, so accuracy and NFE are
    the same either way)."""
    baseline = runner.baseline(split)
    params, settings = trial_settings(runner.spec, trial)
    strategy = make_strategy(runner.spec.strategy, params)
    result = runner.evaluation.evaluator(split, reuse=False).run(strategy, settings=settings,
                                                                 progress=progress)
    figures = {k: v for k, v in result.metrics().items() if k not in ("forward_rows", "cache_hit_rate")}
    figures.update(relative_figures(result.accuracy, result.mean_nfe, baseline, runner.spec.gamma))
    study.set_user_attr(f"{VALIDATION_PREFIX}{split}:{trial.number}", figures)
    return figures


def validate(runner: StudyRunner, split: str = "test",
             progress: Callable[[int, int], Any] | None = None) -> dict[int, dict[str, Any]]:
    """Held-out figures of every trial on the (feasible) Pareto front, measured once each."""
    study = runner.load()
    trials = front(study.trials) or front(study.trials, feasible_only=False)
    if not trials:
        raise UsageError(f"study {runner.study_name!r} has no complete trial to validate yet.")
    out = {}
    for trial in trials:
        out[trial.number] = _stored(study, trial.number, split) or \
            _validate_trial(runner, study, trial, split, progress)
    return out


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The feasible complete trial with the highest quality per step."""
    candidates = [t for t in study.trials
                  if trial_metrics(t).get("complete") and trial_metrics(t).get("feasible", True)]
    if not candidates:
        raise UsageError(f"study {study.study_name!r} has no feasible complete trial; run more "
                         "trials or loosen the accuracy floor.")
    return max(candidates, key=lambda t: (trial_metrics(t)["quality_per_step"], -t.number))


def export(runner: StudyRunner, path: str, *, trial_number: int | None = None,
           split: str = "test", progress: Callable[[int, int], Any] | None = None) -> Profile:
    """Write trial ``trial_number`` (default: the best) as a profile carrying held-out figures."""
    study = runner.load()
    if trial_number is None:
        trial = best_trial(study)
    else:
        matches = [t for t in study.trials if t.number == trial_number]
        if not matches or "params" not in matches[0].user_attrs:
            raise UsageError(f"study {runner.study_name!r} has no finished trial {trial_number}.")
        trial = matches[0]
    figures = _stored(study, trial.number, split) or _validate_trial(runner, study, trial, split,
                                                                     progress)
    model = runner.evaluation.model
    params, settings = trial_settings(runner.spec, trial)
    profile = Profile(
        strategy=runner.spec.strategy,
        params=params,
        decoding=settings,
        model=ModelInfo(name=model.name, adapter=model.kind, logit_shift=model.logit_shift),
        task=runner.spec.task,
        metrics={k: float(v) for k, v in figures.items()},
        provenance=Provenance(
            study=runner.study_name, trial=trial.number, storage=mask_url(runner.url),
            data_hash=runner.evaluation.data_hash,
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            version=sampler.__version__),
    )
    save_profile(profile, path)
    return profile


