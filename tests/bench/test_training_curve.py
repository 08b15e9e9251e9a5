"""bench/training_curve.py: the curves of a run's training.json, as a picture."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

_SPEC = importlib.util.spec_from_file_location(
    "training_curve", Path(__file__).parents[2] / "bench" / "training_curve.py")
curve = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(curve)


def _run(folder: Path, log: list[dict]) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "training.json").write_text(json.dumps(
        {"config": {"out": str(folder), "steps": 100}, "steps_done": 100, "wall_seconds": 7200,
         "hardware": "cpu", "log": log}))


def test_plots_loss_and_probe_and_prints_the_last_figures(tmp_path, capsys):
    log = [{"step": s, "loss": 1 / s, "lr": 1e-3, "wall_seconds": s} for s in range(10, 101, 10)]
    for entry in log[4::5]:
        entry.update(val_loss=entry["loss"] * 1.1, arith_acc=entry["step"] / 200)
    _run(tmp_path / "run", log + [dict(log[-2], loss=9.0)])  # a step logged again: the later wins
    assert curve.main([str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "run" / "training.png").stat().st_size > 10_000
    assert out.startswith("step 100, loss 0.0100, val_loss 0.0110, arith_acc 0.5000;")
    _, steps = curve.read_log(tmp_path / "run")
    assert [e["step"] for e in steps] == list(range(10, 101, 10)) and steps[-2]["loss"] == 9.0


@pytest.mark.parametrize("log,message", [(None, "does not exist"), ([], "no logged steps")])
def test_a_folder_without_a_log_is_one_line(tmp_path, capsys, log, message):
    if log is not None:
        _run(tmp_path, log)
    assert curve.main([str(tmp_path), "-o", str(tmp_path / "c.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not (tmp_path / "c.png").exists()
