"""The bundled multi-step task, paired with the bundled model ``tiny-cot`` (a miniature LLaDA)."""

from __future__ import annotations

from functools import cached_property

from sampler.zoo import cot

from .base import Example, Task

__all__ = ["CotTask"]


class CotTask(Task):
    """GSM8K-format word problems answered by a chain of equations (in-order chains, free-order
    sums, two sub-totals then their sum), scored by a validator that checks the final number and
    every equation; see :mod:`sampler.zoo.cot`. Decoding defaults: gen_length ``cot.GEN_LENGTH``
    (128) in blocks of ``cot.BLOCK_LENGTH`` (32), as real chain-of-thought decoding runs."""

    name = "cot"
    default_model = "tiny-cot"
    description = "bundled multi-step chain-of-thought problems (gen 128, 4 blocks; miniature LLaDA)"
    gen_length = cot.GEN_LENGTH
    block_length = cot.BLOCK_LENGTH

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @cached_property
    def _splits(self) -> dict[str, list[Example]]:
        # The model was trained on this seed's training stream, which excludes these held-out sets.
        sets = cot.make_splits(seed=self.seed, n_train=0)
        return {
            split: [Example(id=f"{split}-{i}", prompt=p.question, answer=p.answer,
                            meta={"problem": p}) for i, p in enumerate(sets[split])]
            for split in ("tune", "test")
        }

    def _load(self, split: str) -> list[Example]:
        return self._splits[split]

    def score(self, example: Example, completion: str) -> float:
        return cot.score(example.meta["problem"], completion)
