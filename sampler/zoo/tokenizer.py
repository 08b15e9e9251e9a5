"""The bundled models' tokenizer: one token per character of a task's alphabet.

Built with the ``tokenizers`` library (a WordLevel vocabulary over single characters) and wrapped as
a ``transformers.PreTrainedTokenizerFast``, so ``save_pretrained`` / ``AutoTokenizer`` work as for
any hub model. Encoding a question appends ``[SEP]``: ``tokenizer(question)`` is a ready prompt,
and the model writes its answer after it, padded with ``[EOS]`` up to the generation length.

``tiny-arith`` uses :func:`build_tokenizer` over the ``arith`` alphabet with a ``[PAD]`` token of
its own. ``tiny-cot`` (a miniature LLaDA) uses :func:`build_llada_tokenizer`: the ``cot`` alphabet
and LLaDA's conventions, a dedicated mask token and the end-of-text token doubling as padding
(LLaDA-8B's config has ``pad_token_id == eos_token_id``).

:func:`save_tokenizer` saves any tokenizer so that every transformers release the project supports
loads it: transformers 5 names a plain fast tokenizer ``TokenizersBackend`` in
``tokenizer_config.json``, a class transformers 4 does not have.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from .arith import ALPHABET
from .cot import ALPHABET as COT_ALPHABET

__all__ = ["SPECIAL_TOKENS", "LLADA_SPECIAL_TOKENS", "PORTABLE_CLASSES", "build_tokenizer",
           "build_llada_tokenizer", "save_tokenizer"]

SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "mask_token": "[MASK]",
    "eos_token": "[EOS]",
    "sep_token": "[SEP]",
}
"""Special tokens, which take the first ids in this order; then one id per character."""

PORTABLE_CLASSES = {"TokenizersBackend": "PreTrainedTokenizerFast"}
"""``tokenizer_class`` names transformers 5 writes -> the name that transformers 4 and 5 both
resolve to the same tokenizer (5 keeps ``PreTrainedTokenizerFast`` as the old name of its
``TokenizersBackend``)."""

LLADA_SPECIAL_TOKENS = {
    "unk_token": "[UNK]",
    "mask_token": "[MASK]",
    "eos_token": "[EOS]",
    "sep_token": "[SEP]",
    "pad_token": "[EOS]",
}
"""LLaDA's conventions: no padding token of its own, the end-of-text token pads (left padding is
masked out by the attention mask, answer padding is what the model learns to write)."""


def build_tokenizer(alphabet: str = ALPHABET, specials: dict[str, str] = SPECIAL_TOKENS
                    ) -> PreTrainedTokenizerFast:
    """A character-level tokenizer over ``alphabet`` with ``specials`` (role -> token; the
    distinct tokens take the first ids, in order)."""
    tokens = list(dict.fromkeys(specials.values()))
    vocab = {token: i for i, token in enumerate(tokens)}
    for char in sorted(set(alphabet)):
        vocab[char] = len(vocab)

    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=specials["unk_token"]))
    # Every character, newline and space included, is its own pre-token.
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    sep = specials["sep_token"]
    core.post_processor = processors.TemplateProcessing(
        single=f"$A {sep}", pair=f"$A {sep} $B {sep}", special_tokens=[(sep, vocab[sep])])

    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        clean_up_tokenization_spaces=False,
        model_max_length=512,
        padding_side="left",
        **specials,
    )


def build_llada_tokenizer() -> PreTrainedTokenizerFast:
    """The ``tiny-cot`` tokenizer: the ``cot`` alphabet with :data:`LLADA_SPECIAL_TOKENS`."""
    return build_tokenizer(COT_ALPHABET, LLADA_SPECIAL_TOKENS)


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, folder: str | Path) -> None:
    """``tokenizer.save_pretrained(folder)``, with a ``tokenizer_class`` every supported
    transformers release loads (:data:`PORTABLE_CLASSES`)."""
    tokenizer.save_pretrained(folder)
    path = Path(folder) / "tokenizer_config.json"
    config = json.loads(path.read_text())
    portable = PORTABLE_CLASSES.get(config.get("tokenizer_class"))
    if portable is not None:
        config["tokenizer_class"] = portable
        path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
