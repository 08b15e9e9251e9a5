"""Bad input gives a clear `sampler` error, never a stray exception from deep inside."""

from __future__ import annotations

import pytest
import torch

import sampler
from sampler import ConfigError, NumericalError, SamplerError

from .fakes import FakeModel, random_model

IDS = torch.tensor([[4, 5]])


@pytest.mark.parametrize("kwargs,message", [
    ({"strategy": "fastest"}, "unknown strategy 'fastest'; known strategies: entropy_bound, factor, fixed"),
    ({"strategy": "less", "params": {"tau": 0.9}}, "less params: unknown key `tau`. Did you mean `tau_conf`"),
    ({"strategy": "threshold", "params": {"threshold": -0.1}}, r"allowed range is \[0.0, 1.0\]"),
    ({"strategy": "klass", "params": {"history": 0}}, r"`history` = 0 is out of range"),
    ({"strategy": "fixed", "params": {"score": "best"}}, "`score` = 'best' is not one of"),
    ({"gen_length": 10, "block_length": 4}, r"`gen_length` \(10\) must be a multiple of `block_length` \(4\)"),
    ({"gen_length": 8, "block_length": 4, "max_steps": 3}, "must be a multiple of the number of blocks"),
    ({"strategy": "fixed", "params": {"steps": 64}, "gen_length": 8}, "exceeds the decoding budget"),
    ({"strategy": "fixed", "params": {"steps": 3}, "gen_length": 8, "block_length": 4}, "positive multiple"),
    ({"temperature": -1.0}, "`temperature` = -1.0 is out of range"),
    ({"min_commit": 0}, "`min_commit` = 0 is out of range"),
    ({"strategy": "oracle"}, "the oracle needs reference tokens"),
    ({"js_dtype": "half"}, "`js_dtype` = 'half' is not one of"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        sampler.generate(random_model(), IDS, **{"gen_length": 8, **kwargs})


def test_prompt_too_long():
    model = random_model(max_length=10)
    with pytest.raises(ConfigError, match=r"prompt \(4 tokens\) \+ gen_length \(8\) = 12 exceeds"):
        sampler.generate(model, torch.ones(1, 4, dtype=torch.long), gen_length=8)


def test_bad_tensors():
    model = random_model()
    with pytest.raises(ConfigError, match="2-D integer tensor"):
        sampler.generate(model, torch.ones(4), gen_length=8)
    with pytest.raises(ConfigError, match="left-padded"):
        sampler.generate(model, IDS, attention_mask=torch.tensor([[1, 0]]), gen_length=8)
    with pytest.raises(ConfigError, match="sampler model"):
        sampler.generate(torch.nn.Linear(2, 2), IDS, gen_length=8)


def test_eos_fill_without_eos_token():
    with pytest.raises(ConfigError, match="eos_fill needs an end-of-text token"):
        sampler.generate(random_model(eos_id=None), IDS, gen_length=8, eos_fill=True)


def test_nan_logits():
    def fn(x, call):
        out = torch.zeros(x.shape[0], x.shape[1], 12)
        out[0, -1, 3] = torch.nan
        return out

    with pytest.raises(NumericalError, match=r"NaN logits for batch rows \[0\]"):
        sampler.generate(FakeModel(fn), IDS, gen_length=8)


def test_every_error_is_a_sampler_error():
    assert issubclass(ConfigError, SamplerError) and issubclass(NumericalError, SamplerError)
    assert issubclass(sampler.ProfileError, ConfigError) and issubclass(sampler.ModelError, SamplerError)
