"""The block KV cache as a setting the tuner searches and shows: `[search] cache = [...]`,
`--cache`, trials and profiles that record it, and a model without a cache refused up front."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

import sampler
from tests.sampler.fakes import tiny_native
from tuner import StudyRunner, TASKS, UsageError, load_spec
from tuner.cli import app
from tuner.study import trial_settings
from tuner.validate import export


@pytest.fixture
def native_arith(monkeypatch):
    """A tiny random native LLaDA behind the arith task's tokenizer, and an arith task that
    scores every completion right (random weights solve nothing; the baseline must be > 0)."""
    tokenizer = sampler.load_model("tiny-arith").tokenizer
    model = dataclasses.replace(tiny_native("llada", vocab=len(tokenizer)), tokenizer=tokenizer,
                                mask_id=tokenizer.mask_token_id, eos_id=tokenizer.eos_token_id,
                                pad_id=tokenizer.pad_token_id, name="tiny-native")
    monkeypatch.setattr(TASKS["arith"], "score", lambda example, completion: 1.0)
    return model


def _spec(**search):
    spec = load_spec("arith").with_overrides(n_tune=8, n_test=8, batch_size=4, trials=4)
    return dataclasses.replace(spec, search=search)


def test_cache_is_searched_recorded_and_exported(native_arith, tmp_path):
    runner = StudyRunner(_spec(cache=["none", "dual"]), storage=f"sqlite:///{tmp_path / 's.db'}",
                         model=native_arith)
    study = runner.optimize()
    caches = set()
    for trial in study.trials:
        params, settings = trial_settings(runner.spec, trial)
        assert "cache" not in params  # strategy params only; the cache is a decoding setting
        caches.add(settings.cache)
    assert caches <= {"none", "dual"} and caches
    cached = [t for t in study.trials if trial_settings(runner.spec, t)[1].cache == "dual"]
    if cached:  # a cached trial is timed as in production: nothing reused
        assert cached[0].user_attrs["metrics"]["timed_with_reuse"] == 0
    number = (cached or study.trials)[0].number
    profile = export(runner, str(tmp_path / "p.json"), trial_number=number)
    assert profile.decoding.cache == trial_settings(runner.spec, study.trials[number])[1].cache
    assert sampler.load_profile(tmp_path / "p.json").decoding.cache == profile.decoding.cache


def test_the_baseline_is_decoded_without_a_cache(native_arith, tmp_path):
    spec = dataclasses.replace(_spec(), decoding=dataclasses.replace(_spec().decoding,
                                                                     cache="dual"))
    runner = StudyRunner(spec, storage=f"sqlite:///{tmp_path / 's.db'}", model=native_arith)
    assert runner.baseline_settings.cache == "none"
    plain = StudyRunner(_spec(), storage=f"sqlite:///{tmp_path / 's.db'}", model=native_arith)
    assert runner._baseline_key("tune") == plain._baseline_key("tune")


def test_a_model_without_a_cache_is_refused_before_anything_is_written(tmp_path):
    db = tmp_path / "s.db"
    runner = StudyRunner(_spec(cache=["none", "prefix"]), storage=f"sqlite:///{db}")
    with pytest.raises(UsageError, match="cache='prefix' needs a model with a block KV cache"):
        runner.prepare()
    assert not db.exists()


@pytest.mark.parametrize("search, message", [
    ({"cache": "dual"}, "list the values to try"),
    ({"cache": ["none", "lots"]}, "is not one of"),
    ({"cache": []}, "list the values to try"),
])
def test_bad_cache_searches_are_one_line_errors(search, message, tmp_path):
    with pytest.raises(UsageError, match=message):
        StudyRunner(_spec(**search), storage=f"sqlite:///{tmp_path / 's.db'}")


def test_cli_cache_flag_is_checked_and_shown(storage):
    result = CliRunner().invoke(app, ["optimize", "--task", "arith", "--cache", "dual",
                                      "--trials", "1", "--n-tune", "8"])
    assert result.exit_code != 0
    assert "needs a model with a block KV cache" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, ["eval", "--task", "arith", "--strategy", "threshold",
                                      "--params", '{"threshold": 0.9}', "--n", "8", "--json",
                                      "--cache", "none"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["cache"] == "none"
    result = CliRunner().invoke(app, ["eval", "--task", "arith", "--strategy", "threshold",
                                      "--n", "8", "--cache", "sometimes"])
    assert result.exit_code != 0 and "is not one of" in result.output
