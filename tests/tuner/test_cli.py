"""The CLI: tables of (arguments, expected exit code, expected message); one line, no traceback,
nothing written on a mistake."""

from __future__ import annotations

import json

import pytest


def _run(cli, args):
    result = cli(args)
    return result.exit_code, result.stdout + result.stderr


ERRORS = [
    (["optimize", "--task", "mmlu"], 2, "unknown task 'mmlu'; known tasks: arith,"),
    (["optimize", "--task", "arith", "--trials", "0"], 2, "--trials must be > 0, got 0"),
    (["optimize", "--task", "arith", "--objective", "fast"], 2, "unknown objective 'fast'"),
    (["optimize", "--task", "arith", "--sampler", "cma"], 2, "unknown sampler 'cma'"),
    (["optimize", "--task", "arith", "--strategy", "magic"], 2, "unknown strategy 'magic'"),
    (["optimize", "--task", "arith", "--accuracy-floor", "1.5"], 2, "--accuracy-floor must be in [0, 1]"),
    (["optimize", "--task", "arith", "--accuracy-floor", "0.5", "--tolerance", "1"], 2,
     "give --accuracy-floor or --tolerance, not both"),
    (["optimize", "--task", "arith", "--model", "/no/such/model"], 1, "cannot find model '/no/such/model'"),
    (["optimize", "--task", "arith", "--storage", "not a url"], 1, "malformed storage URL"),
    (["optimize", "--task", "arith", "--spec", "/no/spec.toml"], 2, "study spec /no/spec.toml does not exist"),
    (["optimize", "--task", "arith", "--workers", "2"], 2, "--workers needs a database several"),
    (["eval", "--task", "arith"], 2, "give --profile, or --strategy with --params"),
    (["eval", "--task", "arith", "--strategy", "less", "--params", "{bad"], 2, "--params is not valid JSON"),
    (["eval", "--task", "arith", "--strategy", "less", "--params", '{"tau": 1}'], 1,
     "less params: unknown key `tau`. Did you mean `tau_conf`"),
    (["eval", "--task", "arith", "--profile", "/no/p.json"], 1, "profile file '/no/p.json' does not exist"),
    (["eval", "--task", "arith", "--strategy", "less", "--split", "train"], 2, "unknown split 'train'"),
    (["export", "--study", "s", "-o", "x.json"], 2, "give --trial N or --best"),
    (["validate", "--study", "s"], 1, "no study database"),
    (["studies"], 1, "no study database"),
    (["show", "s"], 1, "no study database"),
]


@pytest.mark.parametrize("args,code,message", ERRORS, ids=[" ".join(e[0])[:60] for e in ERRORS])
def test_mistakes_are_one_line_and_write_nothing(args, code, message, storage, tmp_path, cli):
    exit_code, output = _run(cli, args)
    assert exit_code == code, output
    assert message in output
    assert "Traceback" not in output
    assert len([line for line in output.strip().splitlines() if line.strip()]) <= 2
    assert not (tmp_path / "studies.sqlite3").exists(), "a failed command left a database"


def test_help_of_every_command(cli):
    for command in ("optimize", "baseline", "eval", "validate", "export", "studies", "show", "tasks"):
        code, output = _run(cli, [command, "--help"])
        assert code == 0 and "Usage" in output


def test_help_shows_every_bracketed_word_of_its_source(cli):
    """Rich reads `[search]` in a help text as markup and drops it: such words must be escaped."""
    import re

    import typer.main

    from tuner.cli import app

    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        words = {m for text in texts for m in re.findall(r"\[[a-z_.]+\]", text)}
        _, output = _run(cli, [name, "--help"])
        missing = [w for w in sorted(words) if w not in output]
        assert not missing, f"`tuner {name} --help` lost {missing}"


def test_spec_with_an_unknown_key(tmp_path, storage, cli):
    spec = tmp_path / "arith.toml"
    spec.write_text('task = "arith"\ntrails = 3\n')
    code, output = _run(cli, ["optimize", "--task", "arith", "--spec", str(spec)])
    assert code == 2 and "unknown key `trails`" in output


def test_tasks_lists_the_registry(cli):
    code, output = _run(cli, ["tasks"])
    assert code == 0 and "arith" in output and "gsm8k" in output


def test_params_json_must_be_an_object(storage, cli):
    code, output = _run(cli, ["eval", "--task", "arith", "--strategy", "less", "--params", json.dumps([1])])
    assert code != 0 and "Traceback" not in output


# ---- issue 18: decoding lengths as flags, progress that moves, tables at 80 columns --------------

@pytest.fixture
def fake_study(tmp_path, monkeypatch):
    """(storage URL, main study name) of the dashboard's fake studies (on tiny-arith), as
    TUNER_STORAGE."""
    from tests.dashboard import fake_studies

    url = f"sqlite:///{tmp_path / 'fake.sqlite3'}"
    monkeypatch.setenv("TUNER_STORAGE", url)
    return url, fake_studies.build(url)


def test_tables_at_80_columns_keep_every_cell_whole(fake_study):
    import os
    import subprocess
    import sys

    import optuna

    from tuner.study import format_values, searched_values

    url, name = fake_study
    shown = subprocess.run([sys.executable, "-c", "from tuner.cli import main; main()",
                            "show", name], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "COLUMNS": "80", "TUNER_STORAGE": url})
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in shown.stdout
    study = optuna.load_study(study_name=name, storage=url)
    shown_params = [format_values(searched_values(t)) for t in study.trials]
    assert len([p for p in shown_params if p]) >= 7
    for params in filter(None, shown_params):
        assert any(params in line for line in lines), params           # whole, on one line
    for header in ("quality/step", "s/example", "params"):
        assert any(header in line for line in lines)                   # headers not folded


def test_gen_and_block_length_flags_override_the_spec(storage, cli):
    args = ["eval", "--task", "arith", "--strategy", "threshold",
            "--params", '{"threshold": 0.9}', "--n", "4", "--json"]
    code, output = _run(cli, args + ["--gen-length", "16"])
    assert code == 0, output
    figures = json.loads(output.strip().splitlines()[-1])
    assert (figures["gen_length"], figures["block_length"]) == (16, 16)  # blocks fit the length
    code, output = _run(cli, args + ["--gen-length", "16", "--block-length", "8"])
    assert code == 0 and '"block_length": 8' in output
    code, output = _run(cli, args + ["--gen-length", "16", "--block-length", "5"])
    assert code == 2 and "Traceback" not in output
    for command in ("optimize", "baseline", "eval"):
        code, output = _run(cli, [command, "--help"])
        assert "--gen-length" in output and "--block-length" in output


def test_validate_reports_its_total_before_the_first_batch(fake_study):
    from tuner.study import StudyRunner
    from tuner.validate import validate

    url, name = fake_study
    runner = StudyRunner.from_study(name, storage=url, device="cpu")
    calls: list[tuple[int, int]] = []
    validate(runner, progress=lambda done, total: calls.append((done, total)))
    n = len(runner.evaluation.examples("test"))
    # the fake study's front is 3 trials, one of them validated: the baseline and 2 decodes
    assert calls[0] == (0, 3 * n)
    assert calls[-1] == (3 * n, 3 * n)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert {total for _, total in calls} == {3 * n}
    again: list[tuple[int, int]] = []
    validate(runner, progress=lambda done, total: again.append((done, total)))
    assert again == []                      # everything stored: nothing to count
