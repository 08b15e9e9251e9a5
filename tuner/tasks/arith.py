"""The bundled synthetic task, paired with the bundled model ``tiny-arith``."""

from __future__ import annotations

from sampler.zoo import arith

from .zoo import ZooTask

__all__ = ["ArithTask"]


class ArithTask(ZooTask):
    """Short GSM8K-format word problems (arithmetic, free-choice splits and orderings) scored by a
    validator per kind; see :mod:`sampler.zoo.arith`. Decoding defaults: gen_length
    ``arith.GEN_LENGTH``, block_length ``arith.BLOCK_LENGTH``."""

    name = "arith"
    default_model = "tiny-arith"
    description = "bundled synthetic GSM8K-format problems (CPU-sized)"
    module = arith
