"""Mistakes refused in one line before anything is written: spec types and ranges, a bad
``[search]`` table, a resume with other settings, a prompt that does not fit, output paths and a
read-only database (issue 15, items 2 and 3)."""

from __future__ import annotations

import pytest

from tuner import StudyRunner, StudySpec, UsageError, load_spec
from tuner.errors import StudyMismatchError


def _one_line(result) -> str:
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("flags, message", [
    (["--n-tune", "0"], "split sizes (n_tune, n_test) must be > 0"),
    (["--n-tune", "-5"], "split sizes (n_tune, n_test) must be > 0"),
    (["--timeout", "0"], "--timeout must be > 0"),
    (["--strategy", "oracle"], "strategy 'oracle' cannot be tuned"),
    (["--trials", "2", "--target", "3"], "give --trials (how many more) or --target"),
    (["--objective", "budget", "--tolerance", "-1"], "--tolerance must be in [0, 100]"),
    (["--gen-length", "33"], "must be a multiple of `block_length`"),
    (["--seed", "-1"], "--seed must be in 0..4294967295"),
    (["--seed", "99999999999"], "--seed must be in 0..4294967295"),
    (["--trials", "100000000"], "must be at most 10,000,000"),
    (["--tolerance", "1000"], "--tolerance must be in [0, 100]"),
    (["--cache", "sometimes"], "is not one of"),
    (["--reuse-gib", "0"], "--reuse-gib 0: give the memory forward-pass reuse may hold"),
    (["--reuse-gib", "-2"], "--reuse-gib -2: give the memory forward-pass reuse may hold"),
])
def test_bad_flags_write_nothing(flags, message, cli, tmp_path):
    db = tmp_path / "s.db"
    result = cli(["optimize", "--task", "arith", "--storage", f"sqlite:///{db}", *flags])
    assert result.exit_code == 2 and message in _one_line(result)
    assert not db.exists()


@pytest.mark.parametrize("line, message", [
    ("batch_size = 1.5", "`batch_size` must be an integer, got 1.5"),
    ('seed = "x"', "`seed` must be an integer, got 'x'"),
    ("search = 3", "`search` must be a table"),
    ("decoding = 3", "`decoding` must be a table"),
    ("[search]\ntau_conf = 7.0", "`tau_conf` = 7.0 is out of range"),
    ("[search]\nwindow = { low = 0, high = 3 }", "`window` = 0 is out of range"),
])
def test_bad_specs_write_nothing(line, message, cli, tmp_path):
    spec = tmp_path / "arith.toml"
    spec.write_text(f'task = "arith"\n{line}\n')
    db = tmp_path / "s.db"
    result = cli(["optimize", "--task", "arith", "--spec", str(spec), "--storage",
                  f"sqlite:///{db}"])
    assert result.exit_code == 2 and message in _one_line(result)
    assert not db.exists()


def test_a_resume_with_other_settings_is_refused_before_measuring(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = load_spec("arith").with_overrides(n_tune=8, trials=1)
    StudyRunner(spec, storage=url, study_name="s").create_or_resume()
    measured = []
    other = StudyRunner(spec.with_overrides(n_tune=12), storage=url, study_name="s")
    monkeypatch.setattr(other, "baseline", lambda *a, **k: measured.append(1))
    with pytest.raises(StudyMismatchError, match="n_tune"):
        other.prepare()
    assert not measured


def test_a_prompt_that_does_not_fit_is_refused_before_writing(tmp_path):
    db = tmp_path / "s.db"
    spec = load_spec("arith").with_overrides(n_tune=8, gen_length=512, block_length=512)
    with pytest.raises(UsageError, match="exceeds the 512 positions"):
        StudyRunner(spec, storage=f"sqlite:///{db}").prepare()
    assert not db.exists()


@pytest.mark.parametrize("args, code, message", [
    (["optimize", "--task", "arith", "--device", "bogus"], 1, "unknown device 'bogus'"),
    (["eval", "--task", "arith", "--strategy", "threshold", "--n", "0"], 2,
     "split sizes (n_tune, n_test) must be > 0"),
    (["eval", "--task", "arith", "--strategy", "nope"], 1, "unknown strategy 'nope'"),
    (["eval", "--task", "arith", "--strategy", "threshold", "--cache", "dual", "--n", "4"], 2,
     "needs a model with a block KV cache"),
    (["baseline", "--task", "nope"], 2, "unknown task 'nope'"),
    (["export", "--study", "s", "--trial", "3", "--best", "-o", "x.json"], 2,
     "give --trial N or --best"),
])
def test_more_mistakes_are_one_line_and_write_nothing(args, code, message, cli, tmp_path):
    db = tmp_path / "s.db"
    result = cli([*args, "--storage", f"sqlite:///{db}"])
    assert result.exit_code == code and message in _one_line(result), result.output
    assert not db.exists()


def test_export_to_a_folder_or_a_missing_folder_is_refused(cli, tmp_path):
    for target, message in ((tmp_path, "is a folder"),
                            (tmp_path / "nope" / "p.json", "does not exist")):
        result = cli(["export", "--study", "x", "--best", "-o", str(target),
                      "--storage", f"sqlite:///{tmp_path / 's.db'}"])
        assert result.exit_code == 2 and message in _one_line(result)


def test_a_read_only_database_is_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "s.db"
    spec = load_spec("arith").with_overrides(n_tune=8)
    StudyRunner(spec, storage=f"sqlite:///{db}", study_name="s").create_or_resume()
    # opened read-only (SQLite's URI mode=ro): refused even for root, unlike a chmod
    url = f"sqlite:///file:{db}?mode=ro&uri=true"
    result = cli(["optimize", "--task", "arith", "--n-tune", "8", "--study", "s", "--trials", "1",
                  "--storage", url])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    last = result.stderr.strip().splitlines()[-1]
    assert "the study database refused the operation" in last and "readonly" in last
    assert not (tmp_path / "file:").exists()  # a URI filename names a file, not a folder to make


def test_spec_types_are_checked_in_the_api():
    with pytest.raises(UsageError, match="`n_tune` must be an integer"):
        StudySpec(task="arith", n_tune=True)


def test_a_resume_fails_a_dead_worker_s_trial_and_queues_it_again(tmp_path, monkeypatch):
    """Issue 15 item 6: a killed worker's RUNNING trial is failed (and retried) by the next run
    that joins the study, not left RUNNING by a plain `--trials N` resume."""
    import time

    from optuna.trial import TrialState

    monkeypatch.setenv("TUNER_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("TUNER_GRACE_PERIOD", "2")
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = load_spec("arith").with_overrides(n_tune=8)
    runner = StudyRunner(spec, storage=url, study_name="s")
    study = runner.create_or_resume()
    with pytest.warns(UserWarning, match="Heartbeat"):  # Optuna: ask() outside optimize()
        dead = study.ask()  # a worker took this trial, beat once, and was killed
    runner.storage.record_heartbeat(dead._trial_id)
    time.sleep(3)
    again = StudyRunner(spec, storage=url, study_name="s")
    from tuner import Baseline

    monkeypatch.setattr(again, "baseline", lambda *a, **k: Baseline(1.0, 10.0, 8))
    _, resumed = again.prepare()
    assert again.recovered == 1
    states = {t.number: t.state for t in resumed.get_trials(deepcopy=False)}
    assert states[dead.number] == TrialState.FAIL
    retried = [t for t in resumed.get_trials(deepcopy=False)
               if t.system_attrs.get("failed_trial") == dead.number]
    assert retried and retried[0].state == TrialState.WAITING


def test_eval_of_the_oracle_decodes_its_full_step_reference(cli, storage):
    import json

    result = cli(["eval", "--task", "arith", "--strategy", "oracle", "--n", "8", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    # the oracle reproduces full-step in fewer passes
    assert figures["accuracy"] == figures["baseline_accuracy"]
    assert figures["mean_nfe"] < figures["baseline_mean_nfe"]
