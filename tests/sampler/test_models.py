"""Model adapters and loading, without the hub: tiny random-weight native models and small models
saved to a temporary folder."""

from __future__ import annotations

import json
import pytest
import torch
import transformers

import sampler
from sampler import DreamModel, LLaDAModel, MaskedLMModel, ModelError
from sampler.models import RemoteCodeModel, adapter_for

from .fakes import tiny_native



@pytest.mark.parametrize("family", ["llada", "dream"])
def test_native_adapters_align_position_i_with_token_i(family):
    model = tiny_native(family)
    x = torch.randint(1, 40, (2, 9))
    raw = model.network(x, torch.arange(9).expand(2, -1))[0]
    logits = model(x)
    if family == "dream":  # its output i predicts token i + 1: the adapter shifts right
        assert model.logit_shift
        assert torch.equal(logits[:, 1:], raw[:, :-1])
    else:
        assert not model.logit_shift and torch.equal(logits, raw)


@pytest.mark.parametrize("family", ["llada", "dream"])
def test_native_left_padding_gives_the_logits_of_the_row_alone(family):
    model = tiny_native(family)
    x = torch.randint(1, 40, (1, 8))
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), x], dim=1)
    mask = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 8, dtype=torch.long)], 1)
    alone, both = model(x), model(padded, mask)[:, 3:]
    start = int(model.logit_shift)  # a shifted row's first position is read from the padding
    torch.testing.assert_close(both[:, start:], alone[:, start:], atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["llada", "dream"])
def test_generate_runs_through_the_native_adapters(family):
    out = sampler.generate(tiny_native(family), torch.tensor([[1, 2]]), strategy="fixed",
                           params={"steps": 4}, gen_length=4)
    assert out.nfe.tolist() == [4] and not (out.generated == 49).any()


@pytest.mark.parametrize("model_type,cls", [("llada", LLaDAModel), ("Dream", DreamModel),
                                            ("bert", MaskedLMModel), (None, MaskedLMModel)])
def test_adapter_chosen_from_model_type(model_type, cls):
    assert adapter_for(model_type) is cls


def test_remote_code_is_an_explicit_opt_in_and_never_for_native_families():
    assert adapter_for("someone-elses-dlm", trust_remote_code=True) is RemoteCodeModel
    assert adapter_for("llada", trust_remote_code=True) is LLaDAModel
    assert adapter_for("someone-elses-dlm") is MaskedLMModel


def test_adapter_can_be_forced_and_unknown_names_listed():
    assert adapter_for("bert", "dream") is DreamModel
    with pytest.raises(ModelError, match="known adapters: dream, llada, masked_lm, remote_code"):
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


# ---- a hub id where the hub cannot be reached: one quick check, one line, what to do ------------

def _no_hub(monkeypatch, port):
    """The hub's endpoint on a loopback port nobody listens on; no proxy, no offline variable."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("offline", [False, True], ids=["unreachable", "HF_HUB_OFFLINE"])
def test_an_uncached_hub_id_without_the_hub_fails_at_once_saying_what_to_do(
        offline, monkeypatch, free_port):
    import time

    _no_hub(monkeypatch, free_port())
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(ModelError) as caught:
        sampler.load_model("nobody-here/no-such-model-18", device="cpu")
    assert time.perf_counter() - started < 5           # no retries (they took 26 s)
    message = str(caught.value)
    assert "\n" not in message and "cannot find model 'nobody-here/no-such-model-18'" in message
    assert ("HF_HUB_OFFLINE is set" if offline else "127.0.0.1") in message
    for what_to_do in ("--model DIR", "tiny-arith", "GPU"):
        assert what_to_do in message


def test_a_cached_hub_id_loads_from_the_cache_when_the_hub_cannot_be_reached(
        tmp_path, monkeypatch, free_port):
    import time

    from huggingface_hub import constants

    from .test_native_loading import _save

    repo, revision = tmp_path / "hub" / "models--someone--tiny-llada", "0" * 40
    _save(repo / "snapshots" / revision, "llada")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    import transformers.utils.hub as hf_hub  # transformers 4 copies the cache path at import

    monkeypatch.setattr(hf_hub, "TRANSFORMERS_CACHE", str(tmp_path / "hub"), raising=False)
    _no_hub(monkeypatch, free_port())
    started = time.perf_counter()
    model = sampler.load_model("someone/tiny-llada", device="cpu")
    assert time.perf_counter() - started < 10 and isinstance(model, LLaDAModel)


def test_loading_prints_no_weight_loading_bar(tmp_path, capfd):
    import transformers.utils.logging as hf_logging

    _save_tiny(tmp_path)
    enabled = hf_logging.is_progress_bar_enabled()
    sampler.load_model(tmp_path, device="cpu")
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled() == enabled     # the user's setting is restored
