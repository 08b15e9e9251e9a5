"""Fixtures: a storage of small fake studies that use the smoke model (``tests/conftest.py``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from . import fake_studies

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


@pytest.fixture(scope="session")
def studies_db(tmp_path_factory, smoke_model_dir) -> Path:
    """A SQLite file with the fake studies of :mod:`fake_studies` (never written by the tests:
    a test that writes copies it with :func:`studies_url`)."""
    path = tmp_path_factory.mktemp("studies") / "studies.sqlite3"
    fake_studies.build(f"sqlite:///{path}", model=smoke_model_dir)
    return path


def _use(url: str, profiles: Path, monkeypatch) -> str:
    monkeypatch.setenv("TUNER_STORAGE", url)
    monkeypatch.setenv("TUNER_PROFILES", str(profiles))
    return url


@pytest.fixture
def storage(studies_db, tmp_path, monkeypatch) -> str:
    """The shared fake studies as TUNER_STORAGE (read only); profiles go to ``tmp/profiles``."""
    return _use(f"sqlite:///{studies_db}", tmp_path / "profiles", monkeypatch)


@pytest.fixture
def writable_storage(studies_db, tmp_path, monkeypatch) -> str:
    """A private copy of the fake studies, for tests that write (export)."""
    path = tmp_path / "studies.sqlite3"
    shutil.copy(studies_db, path)
    return _use(f"sqlite:///{path}", tmp_path / "profiles", monkeypatch)
