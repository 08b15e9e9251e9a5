"""The model-card evaluation: task-aware tables, run end to end on the cot smoke model."""

from __future__ import annotations

import json

import pytest

from sampler.zoo import cot
from sampler.zoo.evaluate import COT_SETTINGS, SETTINGS, Row, main, markdown, targets
from sampler.zoo.evaluate import _decode as REAL_DECODE


def test_arith_table_keeps_its_format():
    rows = [Row("full-step", 0.988, 17.18, {"arith": 0.977, "split": 1.0, "order": 1.0}),
            Row("oracle", 0.988, 1.7, {"arith": 0.977, "split": 1.0, "order": 1.0})]
    assert markdown(rows) == (
        "| decoding | accuracy | mean NFE | arith | split | order |\n"
        "|---|---|---|---|---|---|\n"
        "| full-step | 98.8% | 17.18 | 97.7% | 100.0% | 100.0% |\n"
        "| oracle | 98.8% | 1.70 | 97.7% | 100.0% | 100.0% |\n")
    assert [s.label for s in SETTINGS][0] == "full-step" and SETTINGS[-1].strategy == "oracle"


def test_cot_rows_are_the_issues_table_and_the_cache_modes():
    labels = [s.label for s in COT_SETTINGS]
    assert labels[:2] == ["full-step", "oracle"]
    for label in ("fixed 64 steps", "fixed 32 steps", "fixed 16 steps", "fixed 8 steps",
                  "threshold 0.99", "threshold 0.95", "threshold 0.9", "threshold 0.7",
                  "factor 0.5", "factor 2", "less (0.9, 3, 1e-3)", "less (0.9, 1, 1e-3)",
                  "less (0.7, 1, 1e-3)", "klass (0.9, 1e-3, 1)"):
        assert label in labels
    assert {s.cache for s in COT_SETTINGS if s.label.startswith("threshold 0.9, cache")} == {
        "none", "prefix", "dual"}


def test_cot_targets():
    def row(label, acc, nfe=10.0):
        return Row(label, acc, nfe)
    good = [row("full-step", 0.70, 48.0), row("fixed 32 steps", 0.58), row("threshold 0.9", 0.66),
            row("oracle", 0.70, 4.0)]
    assert all(met for _, met in targets(good))
    too_easy = [row("full-step", 0.98, 48.0), row("fixed 32 steps", 0.97),
                row("threshold 0.9", 0.98), row("oracle", 0.98, 20.0)]
    assert not any(met for _, met in targets(too_easy))


@pytest.mark.slow
def test_evaluate_runs_on_the_cot_smoke_model(cot_smoke_dir, tmp_path, capsys):
    out = tmp_path / "rows.json"
    main(["--task", "cot", "--model", str(cot_smoke_dir), "--n", "2", "--batch-size", "2",
          "--threads", "1", "--device", "cpu", "--json", str(out)])
    printed = capsys.readouterr().out
    assert printed.startswith("| decoding | accuracy | mean NFE | ms / problem | ")  # then kinds
    assert "| threshold 0.9, cache dual |" in printed and "full-step accuracy" in printed
    data = json.loads(out.read_text())
    assert data["task"] == "cot" and data["n"] == 2 and len(data["targets"]) == 4
    rows = {r["label"]: r for r in data["rows"]}
    assert list(rows) == [s.label for s in COT_SETTINGS]
    assert rows["fixed 8 steps"]["mean_nfe"] <= 8
    assert rows["oracle"]["mean_nfe"] <= rows["full-step"]["mean_nfe"] <= cot.GEN_LENGTH
    assert rows["threshold 0.9, cache none"]["mean_nfe"] == rows["threshold 0.9"]["mean_nfe"]


def test_missing_bundled_model_is_one_line(capsys):
    with pytest.raises(SystemExit) as err:
        main(["--model", "/nonexistent/folder", "--task", "cot", "--n", "1"])
    assert err.value.code == 2 and "error:" in capsys.readouterr().err


def test_rows_selects_some_rows_after_full_step(cot_smoke_dir, capsys):
    main(["--task", "cot", "--model", str(cot_smoke_dir), "--n", "2", "--batch-size", "2",
          "--threads", "1", "--device", "cpu", "--row", "oracle", "--row", "threshold 0.9"])
    printed = capsys.readouterr().out
    labels = [line.split(" | ")[0][2:] for line in printed.splitlines()[2:] if line.startswith("| ")]
    assert labels == ["full-step", "oracle", "threshold 0.9"]
    assert "full-step accuracy" not in printed  # the targets need rows that did not run


def test_an_unknown_row_is_one_line_naming_the_rows(capsys):
    with pytest.raises(SystemExit) as err:
        main(["--task", "cot", "--model", "/nonexistent/folder", "--row", "threshold 0.8"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.value.code == 2 and "no row 'threshold 0.8'" in last and "'threshold 0.9'" in last


class Stopped(Exception):
    """A run stopped in the middle (killed, Ctrl-C)."""


def _counting_decode(monkeypatch, stop_at: str | None = None) -> list[str]:
    """Record the label of every row decoded; raise at the row ``stop_at`` (a stopped run)."""
    from sampler.zoo import evaluate as module

    real, calls = REAL_DECODE, []

    def decode(model, problems, task, setting, eos_fill, reference):
        if setting.label == stop_at:
            raise Stopped
        calls.append(setting.label)
        return real(model, problems, task, setting, eos_fill, reference)

    monkeypatch.setattr(module, "_decode", decode)
    return calls


ROWS = ["--row", "oracle", "--row", "threshold 0.9"]


def _args(model, out, *extra):
    return ["--task", "cot", "--model", str(model), "--n", "2", "--batch-size", "2",
            "--threads", "1", "--device", "cpu", "--json", str(out), *ROWS, *extra]


def test_a_stopped_table_resumes_with_the_rows_it_holds(cot_smoke_dir, tmp_path, monkeypatch,
                                                        capsys):
    out = tmp_path / "t.json"
    _counting_decode(monkeypatch, stop_at="threshold 0.9")
    with pytest.raises(Stopped):
        main(_args(cot_smoke_dir, out))
    stopped = json.loads(out.read_text())
    assert stopped["complete"] is False
    assert [r["label"] for r in stopped["rows"]] == ["full-step", "oracle"]
    reference = tmp_path / "t.json.full-step.safetensors"
    assert reference.exists()  # the oracle's reference, for rows still to run

    calls = _counting_decode(monkeypatch)
    main(_args(cot_smoke_dir, out, "--resume"))
    assert calls == ["threshold 0.9"]  # only the missing row ran
    done = json.loads(out.read_text())
    assert done["complete"] is True and not reference.exists()
    assert [r["label"] for r in done["rows"]] == ["full-step", "oracle", "threshold 0.9"]
    assert done["rows"][:2] == stopped["rows"]

    fresh = tmp_path / "fresh.json"
    main(_args(cot_smoke_dir, fresh))
    measured = [(r["label"], r["accuracy"], r["mean_nfe"]) for r in done["rows"]]
    assert measured == [(r["label"], r["accuracy"], r["mean_nfe"])
                        for r in json.loads(fresh.read_text())["rows"]]
    capsys.readouterr()


def test_resume_refuses_another_table_and_reruns_full_step_when_its_output_is_gone(
        cot_smoke_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "t.json"
    _counting_decode(monkeypatch, stop_at="oracle")
    with pytest.raises(Stopped):
        main(_args(cot_smoke_dir, out))
    before = out.read_text()
    with pytest.raises(SystemExit) as err:
        main(_args(cot_smoke_dir, out, "--resume", "--seed", "1"))
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.value.code == 2 and "seed = 0, not 1" in last and out.read_text() == before

    (tmp_path / "t.json.full-step.safetensors").unlink()
    calls = _counting_decode(monkeypatch)
    main(_args(cot_smoke_dir, out, "--resume"))
    assert calls == ["full-step", "oracle", "threshold 0.9"]  # the oracle needs full-step's output
    assert json.loads(out.read_text())["complete"] is True


def test_resume_needs_a_json_file(capsys):
    with pytest.raises(SystemExit) as err:
        main(["--task", "cot", "--model", "/nonexistent/folder", "--resume"])
    assert err.value.code == 2 and "--resume needs --json" in capsys.readouterr().err


def test_a_table_fills_up_over_runs_that_ask_for_other_rows(cot_smoke_dir, tmp_path,
                                                             monkeypatch, capsys):
    out = tmp_path / "t.json"
    base = ["--task", "cot", "--model", str(cot_smoke_dir), "--n", "2", "--batch-size", "2",
            "--threads", "1", "--device", "cpu", "--json", str(out)]
    main([*base, "--row", "oracle"])
    calls = _counting_decode(monkeypatch)
    main([*base, "--resume", "--row", "threshold 0.9"])
    assert calls == ["threshold 0.9"]
    data = json.loads(out.read_text())
    assert [r["label"] for r in data["rows"]] == ["full-step", "oracle", "threshold 0.9"]
    printed = capsys.readouterr().out
    assert "| oracle |" in printed and "| threshold 0.9 |" in printed
