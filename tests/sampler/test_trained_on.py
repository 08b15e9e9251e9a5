"""Files trained on one model (an NI indicator, an EDIT map) warn once when they decode with
other weights: the weights signature they record, robust to the dtype the model is loaded in."""

from __future__ import annotations

import warnings

import pytest
import torch

import sampler
from sampler import ModelMismatchWarning
from sampler.artifacts import file_sha256

from .fakes import fake_indicator_params, tiny_native
from .test_edit import _random_map

G, BLOCK = 16, 8


def _decode(model, strategy, params):
    ids = torch.randint(1, 40, (2, 5), generator=torch.Generator().manual_seed(0))
    return sampler.generate(model, ids, strategy=strategy, params=params, gen_length=G,
                            block_length=BLOCK)


def _mismatch_warnings(run) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in caught if issubclass(w.category, ModelMismatchWarning)]


def test_the_signature_is_the_same_in_float32_and_bfloat16_and_the_fingerprint_is_not():
    model = tiny_native("llada", seed=3)
    signature, fingerprint = model.weights_signature(), model.weights_fingerprint()
    model.network.to(torch.bfloat16)
    try:
        assert model.weights_signature() == signature
        assert model.weights_fingerprint() != fingerprint
    finally:
        model.network.to(torch.float32)
    assert tiny_native("llada", seed=4).weights_signature() != signature


def test_an_indicator_of_other_weights_warns_once_per_model(tmp_path):
    model, other = tiny_native("llada", seed=3), tiny_native("llada", seed=4)
    hidden = model.network.embed_tokens.weight.shape[1]
    signature = model.weights_signature()
    params = fake_indicator_params(tmp_path, hidden_size=hidden, provenance={
        "model": "tiny-llada", "model_signature": signature})
    strategy = sampler.make_strategy("ni", params)
    assert _mismatch_warnings(lambda: _decode(model, strategy, None)) == []
    seen = _mismatch_warnings(lambda: [_decode(other, strategy, None) for _ in range(2)])
    assert len(seen) == 1  # once per model, not at every decode
    assert "trained on model 'tiny-llada'" in seen[0] and signature in seen[0]
    (tmp_path / "old").mkdir()
    old = fake_indicator_params(tmp_path / "old", hidden_size=hidden)  # no signature recorded
    assert _mismatch_warnings(lambda: _decode(other, "ni", old)) == []


def test_a_reasoning_map_of_other_weights_warns(tmp_path):
    model, other = tiny_native("llada", seed=3), tiny_native("llada", seed=4)
    reasoning_map = _random_map(model.network)
    reasoning_map.meta.update(model="tuned/model", model_signature=model.weights_signature())
    path = tmp_path / "map.safetensors"
    reasoning_map.save(path)
    params = {"map": str(path), "map_sha256": file_sha256(path)}
    assert _mismatch_warnings(lambda: _decode(model, "edit", params)) == []
    seen = _mismatch_warnings(lambda: _decode(other, "edit", params))
    assert len(seen) == 1 and "EDIT reasoning map" in seen[0] and "'tuned/model'" in seen[0]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
