"""Model adapters and loading, without the hub: fake modules with the real call signatures and
small models saved to a temporary folder."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
import transformers

import sampler
from sampler import DreamModel, LLaDAModel, MaskedLMModel, ModelError
from sampler.models import adapter_for

V = 10


class EchoNet(torch.nn.Module):
    """Output i puts all mass on token x[i + shift] (Dream's convention when shift = 1)."""

    def __init__(self, shift: int) -> None:
        super().__init__()
        self.shift = shift
        self.seen: dict = {}
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def _logits(self, x):
        target = torch.roll(x, -self.shift, dims=1) if self.shift else x
        return torch.nn.functional.one_hot(target, V).float() * 10


class DreamLike(EchoNet):
    def forward(self, input_ids, attention_mask=None, position_ids=None):
        self.seen = {"attention_mask": attention_mask, "position_ids": position_ids}
        return SimpleNamespace(logits=self._logits(input_ids))


class LLaDALike(EchoNet):
    def forward(self, input_ids, attention_mask=None):
        self.seen = {"attention_mask": attention_mask}
        return SimpleNamespace(logits=self._logits(input_ids))


def _wrap(cls, net):
    return cls(network=net, tokenizer=None, mask_id=9, eos_id=8, pad_id=0, name="fake")


def test_dream_logits_are_shifted_so_position_i_predicts_token_i():
    net = DreamLike(shift=1)
    model = _wrap(DreamModel, net)
    x = torch.tensor([[1, 2, 3, 4, 5]])
    logits = model(x)
    assert logits.argmax(-1)[0, 1:].tolist() == [2, 3, 4, 5]
    assert model.logit_shift


def test_dream_padding_builds_a_pairwise_mask_and_positions():
    net = DreamLike(shift=1)
    model = _wrap(DreamModel, net)
    model(torch.tensor([[0, 1, 2]]), torch.tensor([[0, 1, 1]]))
    assert net.seen["attention_mask"].shape == (1, 1, 3, 3)
    assert net.seen["position_ids"].tolist() == [[0, 0, 1]]
    assert not net.seen["attention_mask"][0, 0, 1, 0]


def test_llada_logits_are_used_as_is_and_mask_only_passed_when_given():
    net = LLaDALike(shift=0)
    model = _wrap(LLaDAModel, net)
    x = torch.tensor([[1, 2, 3]])
    assert model(x).argmax(-1).tolist() == x.tolist()
    assert net.seen["attention_mask"] is None
    model(x, torch.tensor([[0, 1, 1]]))
    assert net.seen["attention_mask"].tolist() == [[0, 1, 1]]


def test_generate_runs_through_the_remote_code_adapters():
    for cls, net in ((LLaDAModel, LLaDALike(0)), (DreamModel, DreamLike(1))):
        out = sampler.generate(_wrap(cls, net), torch.tensor([[1, 2]]), strategy="fixed",
                               params={"steps": 4}, gen_length=4)
        assert out.nfe.tolist() == [4] and not (out.generated == 9).any()


@pytest.mark.parametrize("model_type,cls", [("llada", LLaDAModel), ("Dream", DreamModel),
                                            ("bert", MaskedLMModel), (None, MaskedLMModel)])
def test_adapter_chosen_from_model_type(model_type, cls):
    assert adapter_for(model_type) is cls


def test_adapter_can_be_forced_and_unknown_names_listed():
    assert adapter_for("bert", "dream") is DreamModel
    with pytest.raises(ModelError, match="known adapters: dream, llada, masked_lm"):
        adapter_for("bert", "nope")


def _save_tiny(folder, *, with_mask=True):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + (["[MASK]"] if with_mask else []) + list("abcdefgh")
    (folder / "vocab.txt").write_text("\n".join(vocab))
    kwargs = {} if with_mask else {"mask_token": None}
    tok = transformers.BertTokenizer(vocab_file=str(folder / "vocab.txt"), **kwargs)
    tok.save_pretrained(folder)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=24)
    torch.manual_seed(0)
    transformers.BertForMaskedLM(config).save_pretrained(folder)
    return tok


def test_load_model_from_a_local_folder(tmp_path):
    tok = _save_tiny(tmp_path)
    model = sampler.load_model(tmp_path, device="cpu")
    assert isinstance(model, MaskedLMModel)
    assert model.mask_id == tok.mask_token_id and model.max_length == 24
    ids = torch.tensor([tok.convert_tokens_to_ids(list("abc"))])
    out = sampler.generate(model, ids, strategy="fixed", params={"steps": 8}, gen_length=8)
    assert out.sequences.shape == (1, 11)


def test_load_model_without_a_mask_token_is_a_clear_error(tmp_path):
    _save_tiny(tmp_path, with_mask=False)
    config = json.loads((tmp_path / "config.json").read_text())
    config.pop("mask_token_id", None)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="defines no mask token"):
        sampler.load_model(tmp_path, device="cpu")


def test_load_model_of_an_unknown_name_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="cannot find model"):
        sampler.load_model(str(tmp_path / "missing"), device="cpu")
