"""Shared fixtures: a temporary study database per test and a small trained model."""

from __future__ import annotations

import pytest


@pytest.fixture
def storage(tmp_path, monkeypatch):
    """A fresh SQLite storage URL, also set as TUNER_STORAGE."""
    url = f"sqlite:///{tmp_path / 'studies.sqlite3'}"
    monkeypatch.setenv("TUNER_STORAGE", url)
    return url


@pytest.fixture(scope="session")
def smoke_model(tmp_path_factory):
    """A model trained for a few steps (seconds): real shapes and tokenizer, no skill."""
    import sampler
    from sampler.zoo import train

    folder = tmp_path_factory.mktemp("smoke")
    train.main(["--out", str(folder), "--smoke"])
    return sampler.load_model(str(folder), device="cpu")
