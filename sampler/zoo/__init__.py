"""Models bundled with the library, loadable by a short name.

``tiny-arith`` is a small masked diffusion LM (ModernBERT) trained in this project on the ``arith``
task (:mod:`sampler.zoo.arith`) by :mod:`sampler.zoo.train`; ``tiny-cot`` is a miniature LLaDA (the
native architecture, saved as an official LLaDA checkpoint) trained by the same command with
``--task cot`` on the ``cot`` task (:mod:`sampler.zoo.cot`). Their folders ship as package data and
hold a model card (``README.md``) with the exact training command.
``sampler.load_model("tiny-arith")`` resolves the name here.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError

__all__ = ["BUNDLED_MODELS", "TRAIN_COMMANDS", "bundled_path"]

_HERE = Path(__file__).resolve().parent

BUNDLED_MODELS: dict[str, Path] = {
    "tiny-arith": _HERE / "tiny_arith",
    "tiny-cot": _HERE / "tiny_cot",
}
"""Short name -> folder in Hugging Face format (config, safetensors weights, tokenizer)."""

TRAIN_COMMANDS: dict[str, str] = {
    "tiny-arith": "python -m sampler.zoo.train --out {path}",
    "tiny-cot": "python -m sampler.zoo.train --task cot --out {path} --save-every 250",
}
"""Short name -> the command that trains it (tiny-cot: about 14 hours on 2 CPU cores, resumable
with ``--resume``; minutes on a GPU with ``--device cuda --amp``)."""


def bundled_path(name: str) -> Path:
    """The folder of the bundled model ``name``; raises ``ModelError`` if unknown or missing."""
    if name not in BUNDLED_MODELS:
        known = ", ".join(sorted(BUNDLED_MODELS))
        raise ModelError(f"no bundled model named {name!r}; bundled models: {known}.")
    path = BUNDLED_MODELS[name]
    if not (path / "config.json").is_file():
        command = TRAIN_COMMANDS[name].format(path=path)
        card = path / "README.md"
        recipe = f" (recipe: {card})" if card.is_file() else ""
        raise ModelError(f"the bundled model {name!r} is missing from {path}; train it with "
                         f"`{command}`{recipe}.")
    return path
