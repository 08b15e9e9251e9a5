"""GSM8K: grade-school math word problems (hub dataset ``openai/gsm8k``, config ``main``).

Real users read the hub; ``data_dir`` (``--data DIR`` or ``TUNER_DATA_DIR``) reads a local folder
with ``train.jsonl`` and ``test.jsonl`` of the same format (``question`` / ``answer`` per line).
The tuning split is a seeded shuffle of the train file; the held-out split is the test file, so the
two never overlap.
"""

from __future__ import annotations

import json
import os
import random
import re
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import DataError
from .base import Example, Task

__all__ = ["GSM8KTask", "extract_number"]

_FINAL = re.compile(r"####\s*([^\n]*)")
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")
INSTRUCTION = "Solve the problem step by step. End with a final line '#### <number>'."


def _to_decimal(text: str) -> Decimal | None:
    cleaned = text.replace(",", "").replace("$", "").strip().rstrip(".")
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        return None


def extract_number(text: str) -> Decimal | None:
    """The number after ``####``, else the last number in ``text`` (commas and ``$`` removed)."""
    final = _FINAL.search(text)
    if final:
        numbers = _NUMBER.findall(final.group(1))
        if numbers:
            return _to_decimal(numbers[0])
    numbers = _NUMBER.findall(text)
    return _to_decimal(numbers[-1]) if numbers else None


class GSM8KTask(Task):
    """GSM8K with exact numeric match of the final answer."""

    name = "gsm8k"
    default_model = "GSAI-ML/LLaDA-8B-Instruct"
    description = "grade-school math (openai/gsm8k), exact numeric match"
    gen_length = 256
    block_length = 32

    def __init__(self, data_dir: str | os.PathLike | None = None, seed: int = 0) -> None:
        self._data_dir = data_dir
        self.seed = seed

    @property
    def data_dir(self) -> Path | None:
        """The local folder read instead of the hub (``TUNER_DATA_DIR`` when none was given)."""
        chosen = self._data_dir or os.environ.get("TUNER_DATA_DIR")
        return Path(chosen) if chosen else None

    def _read_local(self, name: str) -> list[dict[str, Any]]:
        path = self.data_dir / f"{name}.jsonl"
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            raise DataError(f"cannot read {path}: a GSM8K folder needs train.jsonl and test.jsonl.") from None
        rows = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows.append({"question": str(row["question"]), "answer": str(row["answer"])})
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(f"{path}, line {number}: expected a JSON object with `question` and "
                                "`answer`.") from None
        return rows

    def _read_hub(self, name: str) -> list[dict[str, Any]]:
        try:
            import datasets
        except ImportError:
            raise DataError("reading openai/gsm8k from the hub needs the `datasets` package "
                            "(pip install datasets), or pass --data DIR with train.jsonl / "
                            "test.jsonl.") from None
        try:
            return list(datasets.load_dataset("openai/gsm8k", "main", split=name))
        except Exception as err:  # the hub's errors vary by version and network
            raise DataError(f"cannot load openai/gsm8k from the hub ({type(err).__name__}); pass "
                            "--data DIR or set TUNER_DATA_DIR to a local copy.") from None

    @cached_property
    def _splits(self) -> dict[str, list[Example]]:
        read = self._read_local if self.data_dir is not None else self._read_hub
        train, test = read("train"), read("test")
        random.Random(self.seed).shuffle(train)
        return {
            "tune": [Example(id=f"train-{i}", prompt=r["question"], answer=r["answer"])
                     for i, r in enumerate(train)],
            "test": [Example(id=f"test-{i}", prompt=r["question"], answer=r["answer"])
                     for i, r in enumerate(test)],
        }

    def _load(self, split: str) -> list[Example]:
        return self._splits[split]

    def score(self, example: Example, completion: str) -> float:
        gold, got = extract_number(example.answer), extract_number(completion)
        return float(gold is not None and got is not None and gold == got)

    def prompt_text(self, example: Example, tokenizer: Any) -> str:
        content = f"{example.prompt}\n{INSTRUCTION}"
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template([{"role": "user", "content": content}],
                                                 add_generation_prompt=True, tokenize=False)
        return f"Question: {content}\nAnswer:"

    def add_special_tokens(self, tokenizer: Any) -> bool:
        # A chat template already writes the special tokens it needs (BOS, role markers).
        return not getattr(tokenizer, "chat_template", None)
