"""Tasks whose problems come from a generator of :mod:`sampler.zoo` (paired with a bundled model)."""

from __future__ import annotations

from functools import cached_property
from types import ModuleType
from typing import ClassVar

from .base import Example, Task

__all__ = ["ZooTask"]


class ZooTask(Task):
    """A task over a :mod:`sampler.zoo` problem module: its seeded held-out ``tune`` / ``test``
    sets (disjoint from what the bundled model was trained on), its validator, and its decoding
    lengths (``GEN_LENGTH``, ``BLOCK_LENGTH``). A subclass sets ``name``, ``default_model``,
    ``description`` and ``module``."""

    module: ClassVar[ModuleType]

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.gen_length = cls.module.GEN_LENGTH
        cls.block_length = cls.module.BLOCK_LENGTH

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @cached_property
    def _splits(self) -> dict[str, list[Example]]:
        # The model was trained on this seed's training data, which excludes these held-out sets.
        sets = self.module.make_splits(seed=self.seed, n_train=0)
        return {
            split: [Example(id=f"{split}-{i}", prompt=p.question, answer=p.answer,
                            meta={"problem": p}) for i, p in enumerate(sets[split])]
            for split in ("tune", "test")
        }

    def _load(self, split: str) -> list[Example]:
        return self._splits[split]

    def score(self, example: Example, completion: str) -> float:
        return self.module.score(example.meta["problem"], completion)
