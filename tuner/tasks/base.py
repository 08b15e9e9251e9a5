"""What every task provides: examples for named splits, prompt encoding, and scoring."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import torch

from ..errors import DataError, UsageError

__all__ = ["Example", "Task", "SPLITS", "hash_examples"]

SPLITS = ("tune", "test")
"""``tune``: the thresholds are searched on it. ``test``: held out, for validation. Never overlap."""


@dataclass(frozen=True)
class Example:
    """One problem: its id, the prompt text, the gold answer, and what the scorer needs."""

    id: str
    prompt: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def hash_examples(examples: Sequence[Example]) -> str:
    """A short content hash of examples (ids, prompts, answers): it names the data in provenance."""
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(json.dumps([ex.id, ex.prompt, ex.answer]).encode())
    return digest.hexdigest()[:16]


class Task(ABC):
    """A benchmark task. Subclasses set ``name``, ``default_model`` and the decoding lengths, and
    load their data.

    What the tuner reads: ``default_model`` (when a spec names none), ``gen_length`` and
    ``block_length`` (a spec's decoding defaults when the task has no ``studies/<name>.toml``),
    ``description`` (``tuner tasks``), :meth:`examples`, :meth:`encode` and :meth:`score`.
    """

    name: ClassVar[str]
    default_model: ClassVar[str]
    gen_length: ClassVar[int]
    block_length: ClassVar[int]
    description: ClassVar[str] = ""

    def examples(self, split: str, n: int | None = None) -> list[Example]:
        """The first ``n`` examples (all when None) of ``split`` in a fixed order."""
        if split not in SPLITS:
            raise UsageError(f"unknown split {split!r}; splits are: {', '.join(SPLITS)}.")
        items = self._load(split)
        if not items:
            raise DataError(f"task {self.name!r} has no examples in split {split!r}.")
        if n is not None:
            if n < 1:
                raise UsageError(f"the number of examples must be at least 1, got {n}.")
            if n > len(items):
                raise DataError(f"split {split!r} of task {self.name!r} has {len(items)} examples, "
                                f"fewer than the {n} asked for.")
            items = items[:n]
        return items

    @abstractmethod
    def _load(self, split: str) -> list[Example]:
        """All examples of ``split``."""

    @abstractmethod
    def score(self, example: Example, completion: str) -> float:
        """1.0 when ``completion`` answers ``example`` correctly, else 0.0."""

    def prompt_text(self, example: Example, tokenizer: Any) -> str:
        """The text fed to the model (a chat template is applied by tasks that use one)."""
        return example.prompt

    def encode(self, tokenizer: Any, examples: Sequence[Example]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded prompt ids and attention mask, (B, P) each."""
        texts = [self.prompt_text(ex, tokenizer) for ex in examples]
        side = tokenizer.padding_side
        tokenizer.padding_side = "left"
        try:
            batch = tokenizer(texts, padding=True, return_tensors="pt",
                              add_special_tokens=self.add_special_tokens(tokenizer))
        finally:
            tokenizer.padding_side = side
        return batch["input_ids"], batch["attention_mask"]

    def add_special_tokens(self, tokenizer: Any) -> bool:
        """Whether the tokenizer should add its special tokens around :meth:`prompt_text`."""
        return True
