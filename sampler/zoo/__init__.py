"""Models bundled with the library, loadable by a short name.

``tiny-arith`` is a small masked diffusion LM trained in this project on the ``arith`` task
(:mod:`sampler.zoo.arith`) by :mod:`sampler.zoo.train`; its folder ships as package data and holds
a model card (``README.md``). ``sampler.load_model("tiny-arith")`` resolves the name here.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError

__all__ = ["BUNDLED_MODELS", "bundled_path"]

_HERE = Path(__file__).resolve().parent

BUNDLED_MODELS: dict[str, Path] = {
    "tiny-arith": _HERE / "tiny_arith",
}
"""Short name -> folder in Hugging Face format (config, safetensors weights, tokenizer)."""


def bundled_path(name: str) -> Path:
    """The folder of the bundled model ``name``; raises ``ModelError`` if unknown or missing."""
    if name not in BUNDLED_MODELS:
        known = ", ".join(sorted(BUNDLED_MODELS))
        raise ModelError(f"no bundled model named {name!r}; bundled models: {known}.")
    path = BUNDLED_MODELS[name]
    if not (path / "config.json").is_file():
        raise ModelError(f"the bundled model {name!r} is missing from {path}; train it with "
                         f"`python -m sampler.zoo.train --out {path}`.")
    return path
