"""A profile's model info is read: using it with another model, or the same one loaded through
another adapter, warns."""

from __future__ import annotations

import warnings

import pytest
import torch

import sampler
from sampler import ModelInfo, Profile, ProfileMismatchWarning
from tests.sampler.fakes import tiny_native


def _profile(model_info: ModelInfo) -> Profile:
    return Profile(strategy="threshold", params={"threshold": 0.9},
                   decoding=sampler.DecodingSettings(gen_length=8), model=model_info)


def test_a_profile_warns_on_another_adapter_and_not_on_its_own_model():
    model = tiny_native("llada")
    ids = torch.ones(1, 4, dtype=torch.long)
    same = _profile(ModelInfo(name=model.name, adapter="llada", logit_shift=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sampler.generate(model, ids, profile=same)
    dream = _profile(ModelInfo(name=model.name, adapter="dream", logit_shift=True))
    with pytest.warns(ProfileMismatchWarning, match="loaded as 'dream'"):
        sampler.generate(model, ids, profile=dream)
