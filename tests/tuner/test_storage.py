"""Storage URLs: secrets are masked wherever a URL is shown or stored (the CLI, errors, exported
profiles' provenance, the dashboard's caption all go through ``mask_url``), in both the
``user:password@`` form and the query-string form that psycopg2 accepts (``?password=...``)."""

from __future__ import annotations

import pytest

from tuner.errors import StorageError
from tuner.storage import check_url, mask_url, open_storage, scrub

SECRET = "S3cr3t-pw"


@pytest.mark.parametrize("url,shown", [
    (f"postgresql+psycopg2://tuner:{SECRET}@127.0.0.1:5432/tuner",
     "postgresql+psycopg2://tuner:***@127.0.0.1:5432/tuner"),
    (f"postgresql://tuner@db/tuner?password={SECRET}", "postgresql://tuner@db/tuner?password=***"),
    (f"postgresql://tuner@db/tuner?sslmode=require&PassWord={SECRET}",
     "postgresql://tuner@db/tuner?PassWord=***&sslmode=require"),
    (f"postgresql://tuner@db/tuner?sslpassword={SECRET}&application_name=me@host",
     "postgresql://tuner@db/tuner?application_name=me%40host&sslpassword=***"),
    (f"postgresql://tuner:{SECRET}@db/tuner?password={SECRET}",
     "postgresql://tuner:***@db/tuner?password=***"),
    (f"postgresql://tuner:pa@{SECRET}@db/tuner", "postgresql://tuner:***@db/tuner"),  # raw "@"
    # malformed (the port is not a number): masked as text, both forms
    (f"postgresql+psycopg2://tuner:{SECRET}@127.0.0.1:notaport/tuner",
     "postgresql+psycopg2://tuner:***@127.0.0.1:notaport/tuner"),
    (f"postgresql://tuner@127.0.0.1:notaport/tuner?password={SECRET}&x=1",
     "postgresql://tuner@127.0.0.1:notaport/tuner?password=***&x=1"),
    ("sqlite:////tmp/studies/tuner.sqlite3", "sqlite:////tmp/studies/tuner.sqlite3"),
    ("postgresql://tuner@db:5432/tuner", "postgresql://tuner@db:5432/tuner"),
])
def test_mask_url_hides_every_secret(url, shown):
    assert mask_url(url) == shown
    assert SECRET not in mask_url(url)


@pytest.mark.parametrize("url", [
    f"postgresql+psycopg2://tuner:{SECRET}@127.0.0.1:notaport/tuner",
    f"postgresql://tuner@127.0.0.1:notaport/tuner?password={SECRET}",
    f"postgresql://tuner:{SECRET}@[::1/tuner",
])
def test_a_malformed_url_is_refused_without_its_secret(url):
    with pytest.raises(StorageError, match="malformed storage URL") as info:
        check_url(url)
    assert SECRET not in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("url", [None, "", "   ", 5])
def test_a_missing_url_is_one_line(url):
    with pytest.raises(StorageError, match="non-empty string"):
        check_url(url)


def test_driver_errors_are_scrubbed(monkeypatch):
    url = f"postgresql://tuner@127.0.0.1:1/tuner?password={SECRET}"

    def refuse(*args, **kwargs):
        raise RuntimeError(f"could not connect: dsn 'password={SECRET} host=127.0.0.1'\nmore")

    monkeypatch.setattr("tuner.storage.RDBStorage", refuse)
    with pytest.raises(StorageError) as info:
        open_storage(url)
    text = str(info.value)
    assert SECRET not in text and "password=***" in text and "\n" not in text
    assert scrub(f"x {SECRET} y", url) == "x *** y"


def test_cli_shows_masked_urls(cli, tmp_path):
    db = tmp_path / "t.sqlite3"
    open_storage(f"sqlite:///{db}")  # an empty study database
    result = cli(["studies", "--storage", f"sqlite:///{db}?password={SECRET}"])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and "password=***" in result.output

    result = cli(["studies", "--storage",
                  f"postgresql+psycopg2://tuner:{SECRET}@127.0.0.1:notaport/tuner"])
    assert result.exit_code != 0
    assert "malformed storage URL" in result.output and SECRET not in result.output
