"""Files written whole or not at all (``sampler.atomic``): the target appears in one step, with
the umask's permissions, and a write that fails leaves the old file and no temporary one."""

from __future__ import annotations

import os

import pytest

from sampler.atomic import atomic_path, write_text_atomically


def test_a_write_replaces_the_file_in_one_step_with_the_umasks_mode(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    write_text_atomically(target, "new")
    assert target.read_text() == "new"
    mask = os.umask(0o022)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt  # killed mid-write
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
