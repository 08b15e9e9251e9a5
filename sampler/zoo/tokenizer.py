"""The bundled model's tokenizer: one token per character of the ``arith`` alphabet.

Built with the ``tokenizers`` library (a WordLevel vocabulary over single characters) and wrapped as
a ``transformers.PreTrainedTokenizerFast``, so ``save_pretrained`` / ``AutoTokenizer`` work as for
any hub model. Encoding a question appends ``[SEP]``: ``tokenizer(question)`` is a ready prompt,
and the model writes its answer after it, padded with ``[EOS]`` up to the generation length.
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from .arith import ALPHABET

__all__ = ["SPECIAL_TOKENS", "build_tokenizer"]

SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "mask_token": "[MASK]",
    "eos_token": "[EOS]",
    "sep_token": "[SEP]",
}
"""Special tokens, which take the first ids in this order; then one id per character."""


def build_tokenizer(alphabet: str = ALPHABET) -> PreTrainedTokenizerFast:
    """A character-level tokenizer over ``alphabet`` with ``SPECIAL_TOKENS``."""
    specials = list(SPECIAL_TOKENS.values())
    vocab = {token: i for i, token in enumerate(specials)}
    for char in sorted(set(alphabet)):
        vocab[char] = len(vocab)

    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    # Every character, newline and space included, is its own pre-token.
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    sep = SPECIAL_TOKENS["sep_token"]
    core.post_processor = processors.TemplateProcessing(
        single=f"$A {sep}", pair=f"$A {sep} $B {sep}", special_tokens=[(sep, vocab[sep])])

    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        clean_up_tokenization_spaces=False,
        model_max_length=512,
        padding_side="left",
        **SPECIAL_TOKENS,
    )
