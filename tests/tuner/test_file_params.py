"""A study stores the files its strategies read (ni's indicator, edit's map) by absolute path:
relative ones are taken from the spec file's folder, or from the working directory for
``--params``, so a worker, an export or the dashboard started elsewhere names the same file."""

from __future__ import annotations

import os

from tuner.cli import _with_fixed_params
from tuner.spec import load_spec, resolve_file_params


def test_a_spec_file_names_files_relative_to_its_own_folder(tmp_path, monkeypatch):
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "arith.toml").write_text(
        'strategy = "ni"\n[search]\nindicator = "ind/x.safetensors"\ntheta = 0.9\n'
        '[search.edit]\nmap = "/abs/map"\nbase_params = { indicator = "y.safetensors" }\n')
    monkeypatch.chdir(tmp_path)  # not the spec's folder
    search = load_spec("arith", folder / "arith.toml").search
    assert search["indicator"] == str(folder / "ind" / "x.safetensors")
    assert search["theta"] == 0.9  # other params untouched
    assert search["edit"]["map"] == "/abs/map"


def test_params_name_files_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = load_spec("arith").with_overrides(strategy="ni")
    fixed = _with_fixed_params(spec, '{"indicator": "a/i.safetensors", "indicator_sha256": "00",'
                                     ' "ni": {"indicator": "../j.safetensors"}}')
    assert fixed.search["indicator"] == os.path.join(str(tmp_path), "a", "i.safetensors")
    assert fixed.search["indicator_sha256"] == "00"
    assert fixed.search["ni"]["indicator"] == os.path.join(str(tmp_path.parent), "j.safetensors")


def test_home_paths_and_non_file_params_are_kept_as_written():
    search = {"indicator": "~/i.safetensors", "window": 2, "map": "", "tau_conf": "0.9"}
    assert resolve_file_params(search, "/somewhere") == search
