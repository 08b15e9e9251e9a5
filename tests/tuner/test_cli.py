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
