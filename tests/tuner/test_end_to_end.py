"""optimize -> validate -> export -> sampler.load_profile -> generate, on the bundled model."""

from __future__ import annotations

import json

import pytest
import torch

import sampler

SMALL = ["--n-tune", "40", "--n-test", "60", "--trials", "4", "--seed", "0"]


def _ok(cli, args):
    result = cli(args)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
def test_optimize_validate_export_and_decode(storage, tmp_path, cli):
    result = cli(["optimize", "--task", "arith", *SMALL, "--study", "e2e"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Pareto front of e2e" in result.stdout
    assert "model rows answered from the cache" in result.stderr  # reuse says what it did
    _ok(cli, ["studies"])
    shown = _ok(cli, ["show", "e2e"])
    assert shown.count("COMPLETE") == 4
    assert "s/example" in shown and "not the production cost" in shown  # trial timings: reuse
    validated = _ok(cli, ["validate", "--study", "e2e"])
    assert "held-out tok/s" in validated
    path = tmp_path / "arith.json"
    exported = _ok(cli, ["export", "--study", "e2e", "--best", "-o", str(path)])
    assert "held-out accuracy" in exported and "tokens/s" in exported

    profile = sampler.load_profile(path)
    assert profile.task == "arith" and profile.model.name == "tiny-arith"
    assert profile.provenance.study == "e2e" and "sqlite" in profile.provenance.storage
    assert {"accuracy", "mean_nfe", "speedup"} <= set(profile.metrics)

    # the profile's timing is the held-out one, decoded without reuse; the trials' reused passes
    study = json.loads(_ok(cli, ["show", "e2e", "--json"]))
    trials = {t["number"]: t for t in study["trials"]}
    assert all(t["metrics"]["timed_with_reuse"] == 1 for t in trials.values())
    held = trials[profile.provenance.trial]["held_out"]
    assert held["timed_with_reuse"] == 0 and profile.metrics["timed_with_reuse"] == 0
    for key in ("wall_s", "seconds_per_example", "tokens_per_second"):
        assert profile.metrics[key] == pytest.approx(held[key]) and held[key] > 0

    model = sampler.load_model("tiny-arith", device="cpu")
    from tuner import TASKS

    examples = TASKS["arith"].examples("test", 8)
    ids, attn = TASKS["arith"].encode(model.tokenizer, examples)
    decoded = sampler.generate(model, ids, attention_mask=attn, profile=profile)
    assert (decoded.nfe < profile.decoding.gen_length).all()

    # resuming with other settings is refused, naming the difference
    result = cli(["optimize", "--task", "arith", *SMALL, "--study", "e2e", "--objective", "pareto"])
    assert result.exit_code == 1 and "created with objective = 'qps', not 'pareto'" in result.stderr

    # a resumed study runs more trials and keeps the old ones; a small --reuse-gib bounds reuse
    result = cli(["optimize", "--task", "arith", *SMALL[:2], "--trials", "2", "--study", "e2e",
                  "--reuse-gib", "0.0002"])  # 210 kB: about 30 rows of this model
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "evicted: a larger --reuse-gib may reuse more" in result.stderr
    assert _ok(cli, ["show", "e2e"]).count("COMPLETE") == 6


@pytest.mark.slow
def test_target_counts_the_study_not_the_process(storage, cli):
    """--target N stops at N complete trials in the study; a rerun finds it met and adds none."""
    import optuna

    args = ["optimize", "--task", "arith", "--n-tune", "40", "--study", "target"]
    _ok(cli, [*args, "--target", "3"])
    _ok(cli, [*args, "--target", "3"])
    study = optuna.load_study(study_name="target", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    _ok(cli, [*args, "--target", "5"])
    assert len(optuna.load_study(study_name="target", storage=storage).trials) == 5
    both = cli([*args, "--target", "5", "--trials", "2"])
    assert both.exit_code == 2 and "not both" in both.stderr


def test_a_budget_below_the_warm_starts_leaves_none_queued(storage, cli):
    """LESS has three warm starts; a run of two trials enqueues two, so no WAITING trial is left
    in the study for `show`, the dashboard or the next run to trip over."""
    import optuna

    for flag, name in (("--trials", "two"), ("--target", "two-in-all")):
        _ok(cli, ["optimize", "--task", "arith", "--n-tune", "16", "--study", name,
                  "--strategy", "less", flag, "2"])
        study = optuna.load_study(study_name=name, storage=storage)
        assert [t.state.name for t in study.trials] == ["COMPLETE"] * 2
        assert all(t.user_attrs.get("warm_start") for t in study.trials)


@pytest.mark.slow
def test_eval_json_keys(storage, cli):
    out = _ok(cli, ["eval", "--task", "arith", "--strategy", "threshold", "--params",
               json.dumps({"threshold": 0.9}), "--n", "20", "--json"])
    figures = json.loads(out)
    for key in ("accuracy", "mean_nfe", "p95_nfe", "speedup", "tokens_per_forward", "wall_s", "n",
                "gen_length", "block_length", "strategy", "params", "seconds_per_example",
                "tokens_per_second", "generated_tokens", "timed_with_reuse"):
        assert key in figures
    assert figures["n"] == 20 and figures["strategy"] == "threshold"
    assert torch.tensor(figures["mean_nfe"]) > 0
    assert figures["timed_with_reuse"] is False  # eval is a plain decode
    assert 0 < figures["generated_tokens"] <= 20 * figures["gen_length"]
    for key in ("wall_s", "seconds_per_example", "tokens_per_second"):
        assert 0 < figures[key] < float("inf")
    assert figures["tokens_per_second"] == pytest.approx(figures["generated_tokens"] /
                                                         figures["wall_s"])


@pytest.mark.slow
def test_same_seed_same_study(tmp_path):
    """Two studies with the same spec and seed propose the same params and measure the same."""
    import optuna

    from tuner import StudyRunner, load_spec

    spec = load_spec("arith").with_overrides(trials=3, n_tune=30, seed=7)
    studies = []
    for name in ("a", "b"):
        runner = StudyRunner(spec, storage=f"sqlite:///{tmp_path / name}.db", study_name=name)
        studies.append(runner.optimize())
    assert isinstance(studies[0], optuna.Study)
    for t0, t1 in zip(*(s.trials for s in studies)):
        assert t0.params == t1.params
        assert t0.user_attrs["metrics"]["accuracy"] == t1.user_attrs["metrics"]["accuracy"]
        assert t0.user_attrs["metrics"]["mean_nfe"] == t1.user_attrs["metrics"]["mean_nfe"]


@pytest.mark.slow
def test_ctrl_c_fails_the_running_trial_and_a_rerun_resumes(storage, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import optuna

    args = [sys.executable, "-m", "tuner.cli", "optimize", "--task", "arith", "--n-tune", "40",
            "--study", "ctrl-c"]
    env = {**os.environ, "TUNER_STORAGE": storage}
    # A test run started in the background (`cmd &` in a script, nohup) inherits SIGINT ignored,
    # and Python then never turns it into KeyboardInterrupt: give the CLI a terminal's default.
    proc = subprocess.Popen([*args, "--trials", "500"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    completed = 0
    while time.time() < deadline and completed < 2:
        time.sleep(1)
        try:
            study = optuna.load_study(study_name="ctrl-c", storage=storage)
            completed = sum(t.state.name == "COMPLETE" for t in study.trials)
        except KeyError:
            pass
    assert completed >= 2, "no trial completed in time"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    study = optuna.load_study(study_name="ctrl-c", storage=storage)
    states = [t.state.name for t in study.trials]
    assert "RUNNING" not in states
    before = states.count("COMPLETE")
    rerun = subprocess.run([*args, "--trials", "2"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    study = optuna.load_study(study_name="ctrl-c", storage=storage)
    assert [t.state.name for t in study.trials].count("COMPLETE") == before + 2
