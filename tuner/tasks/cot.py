"""The bundled multi-step task, paired with the bundled model ``tiny-cot`` (a miniature LLaDA)."""

from __future__ import annotations

from sampler.zoo import cot

from .zoo import ZooTask

__all__ = ["CotTask"]


class CotTask(ZooTask):
    """GSM8K-format word problems answered by a chain of equations (in-order chains, free-order
    sums, two sub-totals then their sum), scored by a validator that checks the final number and
    every equation; see :mod:`sampler.zoo.cot`. Decoding defaults: gen_length ``cot.GEN_LENGTH``
    (128) in blocks of ``cot.BLOCK_LENGTH`` (32), as real chain-of-thought decoding runs."""

    name = "cot"
    default_model = "tiny-cot"
    description = "bundled multi-step chain-of-thought problems (gen 128, 4 blocks; miniature LLaDA)"
    module = cot
