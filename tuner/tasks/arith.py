"""The bundled synthetic task, paired with the bundled model ``tiny-arith``."""

from __future__ import annotations

from functools import cached_property

from sampler.zoo import arith

from .base import Example, Task

__all__ = ["ArithTask"]


class ArithTask(Task):
    """Short GSM8K-format word problems (arithmetic, free-choice splits and orderings) scored by a
    validator per kind; see :mod:`sampler.zoo.arith`. Decoding defaults: gen_length
    ``arith.GEN_LENGTH``, block_length ``arith.BLOCK_LENGTH``."""

    name = "arith"
    default_model = "tiny-arith"
    description = "bundled synthetic GSM8K-format problems (CPU-sized)"
    gen_length = arith.GEN_LENGTH
    block_length = arith.BLOCK_LENGTH

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @cached_property
    def _splits(self) -> dict[str, list[Example]]:
        # The model was trained on this seed's train split, which excludes these held-out sets.
        sets = arith.make_splits(seed=self.seed, n_train=0)
        return {
            split: [Example(id=f"{split}-{i}", prompt=p.question, answer=p.answer,
                            meta={"problem": p}) for i, p in enumerate(sets[split])]
            for split in ("tune", "test")
        }

    def _load(self, split: str) -> list[Example]:
        return self._splits[split]

    def score(self, example: Example, completion: str) -> float:
        return arith.score(example.meta["problem"], completion)
