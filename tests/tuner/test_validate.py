"""Validation decodes the held-out split without the study's forward-pass reuse, so the timings
it stores (and a profile carries) are production cost; accuracy and NFE are those of a decode
with reuse."""

from __future__ import annotations

import math

import pytest

import sampler
from tuner import StudyRunner, load_spec
from tuner.study import trial_metrics
from tuner.validate import VALIDATION_PREFIX, export, held_out, validate


@pytest.mark.slow
def test_validation_is_timed_without_reuse_and_export_carries_it(tmp_path):
    """Held-out timings come from a plain decode and reach the profile; figures an earlier
    version timed with reuse are measured again."""
    spec = load_spec("arith").with_overrides(trials=3, n_tune=30, n_test=40, seed=0)
    runner = StudyRunner(spec, storage=f"sqlite:///{tmp_path / 'v.db'}", study_name="v")
    study = runner.optimize()
    for t in study.trials:
        m = trial_metrics(t)
        assert m["timed_with_reuse"] == 1 and m["tokens_per_second"] > 0
        assert math.isfinite(m["tokens_per_second"]) and m["seconds_per_example"] > 0

    runner.baseline("test")  # stored first: only the validation decodes run below
    counters = runner.evaluation.cache.counters()
    validated = validate(runner)
    assert runner.evaluation.cache.counters() == counters  # the study's cache was never asked
    assert validated
    for number, figures in validated.items():
        assert figures["timed_with_reuse"] == 0
        for key in ("wall_s", "seconds_per_example", "tokens_per_second"):
            assert figures[key] > 0 and math.isfinite(figures[key])
        assert figures["seconds_per_example"] == pytest.approx(figures["wall_s"] / 40)
        # reuse is exact: the same decode with the cache gives the same accuracy and NFE
        params = study.trials[number].user_attrs["params"]
        again = runner.evaluation.evaluator("test").run(sampler.make_strategy(spec.strategy, params))
        assert again.timed_with_reuse and (again.accuracy, again.mean_nfe) == \
            (figures["accuracy"], figures["mean_nfe"])
    plain = runner.evaluation.evaluator("test", reuse=False)
    assert plain.cache is None
    result = plain.run(sampler.make_strategy(spec.strategy, params))
    assert result.forward_rows == result.total_nfe  # every forward pass ran

    profile = export(runner, str(tmp_path / "p.json"))
    stored = held_out(runner.load(), profile.provenance.trial)
    assert profile.metrics["timed_with_reuse"] == 0
    for key in ("wall_s", "seconds_per_example", "tokens_per_second"):
        assert profile.metrics[key] == pytest.approx(stored[key])
    assert sampler.load_profile(tmp_path / "p.json").metrics == profile.metrics

    # figures stored by an earlier version (timed with the study's cache) are measured again
    number = profile.provenance.trial
    old = {k: v for k, v in stored.items()
           if k not in ("seconds_per_example", "tokens_per_second", "timed_with_reuse")}
    runner.load().set_user_attr(f"{VALIDATION_PREFIX}test:{number}", old)
    again = export(runner, str(tmp_path / "p.json"), trial_number=number)
    assert again.metrics["timed_with_reuse"] == 0 and again.metrics["tokens_per_second"] > 0
    assert held_out(runner.load(), number)["timed_with_reuse"] == 0
