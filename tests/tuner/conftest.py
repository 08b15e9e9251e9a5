"""A temporary study database per test (the smoke model is in ``tests/conftest.py``)."""

from __future__ import annotations

import pytest


@pytest.fixture
def storage(tmp_path, monkeypatch):
    """A fresh SQLite storage URL, also set as TUNER_STORAGE."""
    url = f"sqlite:///{tmp_path / 'studies.sqlite3'}"
    monkeypatch.setenv("TUNER_STORAGE", url)
    return url
