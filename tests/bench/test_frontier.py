"""Smoke test of the side-by-side benchmark: `bench/frontier.py --quick` with a tiny budget runs
end to end on the bundled model and writes the JSON, Markdown and plots the docs quote."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tuner.family import AUTO

STUDIES = ["less", "less+ext", "threshold", "ni", AUTO]  # issue 12's targets compare the first
# three and auto; ni reads tiny-arith's bundled indicator

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_frontier_writes_every_figure(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "frontier.py"), "--quick",
                           "--trials", "2", "--n-tune", "16", "--n-test", "16",
                           "--studies", ",".join(STUDIES),
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "arith.json").read_text())
    assert results["meta"]["studies"] == STUDIES
    for name in STUDIES:
        entry = results[name]
        for key in ("best_accuracy", "iso_nfe", "iso_nfe_fraction", "oracle_multiple",
                    "hypervolume", "iso_seconds_per_example", "iso_seconds_fraction"):
            assert key in entry, f"{name} lacks {key}"
        assert 0.0 <= entry["hypervolume"] <= 1.0
        assert entry["front"], f"{name} has an empty front"
        assert all(p["seconds_per_example"] > 0 for p in entry["front"])  # timed held-out decodes
        assert entry["tune_wall_s"] > 0 and entry["forward_rows"] > 0
    # auto spans exactly the studies run beside it
    assert {p["strategy"] for p in results[AUTO]["front"]} <= set(STUDIES[:-1])
    full, oracle = results["full_step"], results["oracle"]
    assert 0 < full["accuracy"] <= 1 and full["mean_nfe"] > 0
    assert full["seconds_per_example"] > 0 and oracle["seconds_per_example"] > 0
    assert oracle["mean_nfe"] <= full["mean_nfe"]
    assert oracle["accuracy"] >= full["accuracy"] - 1e-9  # it reproduces full-step's answers
    assert set(results["tuners"]) == {"tpe", "gp", "random"}
    reuse = results["reuse"]
    assert reuse["study"] == AUTO == results["meta"]["tuners_study"]
    assert reuse["on"] <= reuse["off"] and reuse["wall_on_s"] > 0 and reuse["wall_off_s"] > 0
    assert "by_cache" not in results and results["meta"]["caches"] == ["none"]
    table = (tmp_path / "arith.md").read_text()
    assert all(f"| {name} |" in table for name in STUDIES)
    # issue 12's targets are checked and reported, each with its measured figures
    assert [t["target"].split(" ")[0] for t in results["targets"]] == ["auto's", "extended",
                                                                       "the"]
    assert all(isinstance(t["pass"], bool) and t["measured"] for t in results["targets"])
    assert "| target (issue 12) |" in table
    assert "--trials 2" in table
    for image in ("arith.png", "tuners.png"):
        assert (tmp_path / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def frontier():
    """bench/frontier.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("frontier", ROOT / "bench" / "frontier.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["frontier"] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("args, message", [
    (["--cache", "prefix"], "has no block KV cache"),    # tiny-arith is not a native LLaDA
    (["--cache", "none,bogus"], "--cache takes distinct modes"),
    (["--indicator", "missing.safetensors"], "no such file"),
    (["--edit", "."], "not a `tuner finetune-edit` output"),
    (["--model", "/nonexistent/model"], "cannot find model"),
])
def test_bad_options_fail_in_one_line_and_write_nothing(frontier, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        frontier.main([*args, "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("frontier.py: error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


QUICK = ["--quick", "--trials", "2", "--n-tune", "16", "--n-test", "16", "--studies",
         "less,threshold"]


def _progress(work: Path) -> dict:
    return json.loads((work / "progress.json").read_text())


@pytest.mark.slow
def test_resumed_run_takes_finished_parts_from_the_work_folder(frontier, tmp_path, capsys):
    import optuna

    work = tmp_path / "work"
    frontier.main([*QUICK, "--work", str(work), "--out", str(tmp_path / "o1")])
    capsys.readouterr()
    first = json.loads((tmp_path / "o1" / "arith.json").read_text())
    progress = _progress(work)
    assert {"reference", "study less cache none", "study threshold cache none", "tuners tpe",
            "tuners gp", "tuners random", "reuse"} == set(progress["parts"])
    assert progress["settings"]["trials"] == 2 and progress["settings"]["studies"] == [
        "less", "threshold"]
    # as if the run had been cut off during the threshold study: its trials are in the storage,
    # its figures are not in progress.json
    del progress["parts"]["study threshold cache none"]
    (work / "progress.json").write_text(json.dumps(progress))

    frontier.main([*QUICK, "--work", str(work), "--out", str(tmp_path / "o2")])
    out = capsys.readouterr().out
    second = json.loads((tmp_path / "o2" / "arith.json").read_text())
    assert f"resumed: less (cache none) from {work / 'progress.json'}" in out
    assert "resumed: full-step and the oracle" in out and "resumed: the gp sampler's" in out
    assert "tuning less (" not in out and "tuning threshold (2 trials, cache none)" in out
    for key in ("less", "full_step", "oracle", "tuners", "reuse"):
        assert second[key] == first[key], key  # taken from progress.json, not measured again
    # threshold tuned again from its start (the same seed: the same trials), not 2 more trials
    study = optuna.load_study(study_name="bench-threshold",
                              storage=f"sqlite:///{work.resolve() / 'bench.db'}")
    assert len(study.trials) == 2
    same = ("trial", "params", "tune_accuracy", "tune_mean_nfe", "accuracy", "mean_nfe")
    assert ([{k: p[k] for k in same} for p in second["threshold"]["front"]]
            == [{k: p[k] for k in same} for p in first["threshold"]["front"]])
    assert second["threshold"]["tune_wall_s"] > 0
    assert "study threshold cache none" in _progress(work)["parts"]
    assert second["meta"]["wall_s"] > first["meta"]["wall_s"]  # the sum over both segments
    assert "| less |" in (tmp_path / "o2" / "arith.md").read_text()


def _work_folder(frontier, work: Path, argv: list[str]) -> bytes:
    """A work folder holding a run of ``argv`` with its reference runs finished (no model)."""
    args = frontier.parse_args([*argv, "--work", str(work)])
    spec, plan = frontier.configure(args)
    progress = frontier.Progress(work / "progress.json", frontier.run_settings(args, spec, plan),
                                 parts={"reference": {"full": {}, "oracle": {}}})
    progress.save()
    (work / "bench.db").touch()
    return (work / "progress.json").read_bytes()


def test_resume_with_other_settings_fails_in_one_line(frontier, tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    before = _work_folder(frontier, work, QUICK)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(frontier.sampler, "load_model", no_model)
    with pytest.raises(SystemExit) as exit_:
        frontier.main([*QUICK, "--trials", "3", "--work", str(work), "--out", str(tmp_path / "o")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("frontier.py: error: ") and len(err.strip().splitlines()) == 1
    assert "trials 2 there, 3 now" in err and "another --work" in err and "n_tune" not in err
    assert not (tmp_path / "o").exists()
    assert (work / "progress.json").read_bytes() == before


def test_sigterm_stops_in_one_line_and_keeps_the_work_folder(frontier, tmp_path, capsys,
                                                             monkeypatch):
    import os
    import signal

    work = tmp_path / "work"
    before = _work_folder(frontier, work, QUICK)

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # as a session's end sends it, during the run

    handler = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(frontier.sampler, "load_model", terminated)
    with pytest.raises(SystemExit) as exit_:
        frontier.main([*QUICK, "--work", str(work), "--out", str(tmp_path / "o")])
    assert exit_.value.code == 130
    err = capsys.readouterr().err
    assert err.strip() == f"frontier.py: interrupted; rerun the same command to resume from {work}"
    assert (work / "progress.json").read_bytes() == before and not (tmp_path / "o").exists()
    assert signal.getsignal(signal.SIGTERM) is handler  # put back


def test_the_run_settings_name_the_edit_map_by_content(frontier, tmp_path):
    """A fine-tuning re-run in the same --edit folder writes another map: a resumed benchmark
    must not take the EDIT part measured with the old one."""
    folder = tmp_path / "edit"
    (folder / "model").mkdir(parents=True)
    (folder / frontier.MAP_FILE).write_bytes(b"map one")
    args = frontier.parse_args(["--quick", "--edit", str(folder)])

    def settings():
        spec, plan = frontier.configure(args)
        return frontier.run_settings(args, spec, plan)

    first = settings()
    (folder / frontier.MAP_FILE).write_bytes(b"map two")
    second = settings()
    assert first["edit"] == second["edit"] and first["edit_map_sha256"] != second["edit_map_sha256"]


def test_a_resume_on_other_weights_or_other_examples_is_refused(frontier, tmp_path, capsys):
    progress = frontier.Progress(tmp_path / "progress.json", {})
    progress.check_inputs("weights-a", "data-a")
    progress.save()
    again = frontier.Progress.open(tmp_path, {})
    again.check_inputs("weights-a", "data-a")  # the same inputs: the run goes on
    for inputs, message in ((("weights-b", "data-a"), "other weights of this model"),
                            (("weights-a", "data-b"), "on other examples of this task")):
        with pytest.raises(SystemExit):
            frontier.Progress.open(tmp_path, {}).check_inputs(*inputs)
        err = capsys.readouterr().err
        assert message in err and "another --work DIR" in err and len(err.strip().splitlines()) == 1
