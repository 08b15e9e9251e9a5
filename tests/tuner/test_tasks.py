"""Tasks: registry, splits, scoring (GSM8K on real rows when the shared copy is present)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tuner import TASKS, DataError, UsageError, get_task
from tuner.tasks import extract_number

GSM8K = Path(__file__).resolve().parents[3] / "shared" / "data" / "gsm8k"


@pytest.mark.parametrize("text,expected", [
    ("so she has 18.\n#### 18", Decimal(18)),
    ("#### $1,080", Decimal(1080)),
    ("#### -3", Decimal(-3)),
    ("The answer is 42 apples, not 41.", Decimal(41)),
    ("It costs $5.50 in total", Decimal("5.50")),
    ("no number here", None),
    ("#### 12.", Decimal(12)),
])
def test_extract_number(text, expected):
    assert extract_number(text) == expected


def test_registry_and_unknown_names():
    assert {"arith", "cot", "gsm8k"} <= set(TASKS)
    with pytest.raises(UsageError, match="unknown task 'mmlu'; known tasks: arith, cot, gsm8k"):
        get_task("mmlu")
    with pytest.raises(UsageError, match="unknown split"):
        TASKS["arith"].examples("train")


def test_arith_splits_are_disjoint_and_scored_by_the_validator():
    task = TASKS["arith"]
    tune, test = task.examples("tune"), task.examples("test")
    assert not {e.prompt for e in tune} & {e.prompt for e in test}
    for ex in tune[:50]:
        assert task.score(ex, ex.answer) == 1.0
        assert task.score(ex, "#### 999999") == 0.0
    with pytest.raises(DataError, match="fewer than the"):
        task.examples("tune", 10**6)


def test_score_needs_no_model():
    ex = TASKS["arith"].examples("test", 1)[0]
    assert TASKS["arith"].score(ex, ex.answer) == 1.0


@pytest.mark.skipif(not GSM8K.is_dir(), reason="../shared/data/gsm8k is not present")
def test_gsm8k_scorer_on_real_rows():
    task = get_task("gsm8k", data_dir=GSM8K)
    test = task.examples("test", 200)
    tune = task.examples("tune", 200)
    assert not {e.prompt for e in test} & {e.prompt for e in tune}
    for ex in test:
        assert task.score(ex, ex.answer) == 1.0                     # the gold solution
        gold = extract_number(ex.answer)
        assert task.score(ex, f"The answer is {gold}.") == 1.0     # no ####: the last number
        assert task.score(ex, f"#### {gold + 1}") == 0.0


def test_gsm8k_local_folder_errors(tmp_path):
    with pytest.raises(DataError, match="needs train.jsonl and test.jsonl"):
        get_task("gsm8k", data_dir=tmp_path).examples("test")
    (tmp_path / "train.jsonl").write_text(json.dumps({"question": "q", "answer": "#### 1"}) + "\n")
    (tmp_path / "test.jsonl").write_text("{not json}\n")
    with pytest.raises(DataError, match="line 1: expected a JSON object"):
        get_task("gsm8k", data_dir=tmp_path).examples("test")


def test_gsm8k_reads_the_env_folder(tmp_path, monkeypatch):
    for name in ("train", "test"):
        (tmp_path / f"{name}.jsonl").write_text(
            json.dumps({"question": f"{name}?", "answer": "#### 3"}) + "\n")
    monkeypatch.setenv("TUNER_DATA_DIR", str(tmp_path))
    assert get_task("gsm8k", data_dir=None).examples("test")[0].prompt == "test?"


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.toml")),
                         ids=lambda p: p.stem)
def test_every_shipped_spec_loads(path):
    from tuner.spec import load_spec

    spec = load_spec(path.stem, path)
    assert spec.task == path.stem
    assert spec.decoding.gen_length % spec.decoding.block_length == 0


def test_cot_splits_are_disjoint_and_scored_by_the_validator():
    task = TASKS["cot"]
    assert (task.default_model, task.gen_length, task.block_length) == ("tiny-cot", 128, 32)
    tune, test = task.examples("tune"), task.examples("test")
    assert len(test) >= 500 and not {e.prompt for e in tune} & {e.prompt for e in test}
    for ex in tune[:100]:
        assert task.score(ex, ex.answer) == 1.0
        broken = ex.answer.replace("=", "=1", 1)              # the first equation made false
        assert task.score(ex, broken) == 0.0
        assert task.score(ex, f"#### {ex.meta['problem'].meta['target']}") == 0.0  # no working
    assert task.examples("test", 3) == get_task("cot", seed=0).examples("test", 3)
    assert get_task("cot", seed=1).examples("test", 3) != task.examples("test", 3)


def test_cot_spec_decodes_in_blocks_with_eos_fill():
    from tuner.spec import load_spec

    spec = load_spec("cot")
    assert spec.model == "tiny-cot" and spec.decoding.num_blocks == 4 and spec.decoding.eos_fill
    assert spec.n_test >= 500


@pytest.mark.slow
def test_cot_optimize_end_to_end_on_a_smoke_model(storage, cli, cot_smoke_dir, monkeypatch):
    """The whole study path for cot (spec, task, native LLaDA through the engine) in seconds. A
    3-step model cannot solve anything, and a study refuses a model whose full-step accuracy is 0,
    so the validator is replaced by a rule any output can pass or fail."""
    from sampler.zoo import cot

    monkeypatch.setattr(cot, "score", lambda problem, completion: float(len(completion) % 2 == 0))
    result = cli(["optimize", "--task", "cot", "--model", str(cot_smoke_dir), "--trials", "2",
                  "--n-tune", "4", "--study", "cot-smoke"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "baseline (full-step, 4 tuning examples)" in result.stdout + result.stderr
    assert "Pareto front of cot-smoke" in result.stdout
