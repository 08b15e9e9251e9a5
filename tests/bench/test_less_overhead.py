"""`bench/less_overhead.py` measures what it says: LESS's tests really run (and pass) on its
synthetic trajectories, so its JS is computed in the worst-case rows, not skipped."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sampler import DecodingSettings

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("less_overhead", ROOT / "bench" / "less_overhead.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("drift", ["coarse", "exact"])
def test_the_worst_case_commits_the_whole_block_once_less_has_its_history(drift):
    bench = _bench()
    vocab, gen, block = 512, 64, 32
    steps = bench.trajectory(6, gen, vocab, worst_case=True)
    settings = DecodingSettings(gen_length=gen, block_length=block)
    params = {"tau_conf": 0.9, "window": 2, "js_delta": 1e-3, "drift": drift}
    _, counts = bench.time_strategy("less", params, steps, settings, vocab - 1, decode=False)
    # block_step advances: once the window's observations exist, every position of the block
    # passes confidence, persistence and JS (before: block_step stuck at 0, only the progress
    # rule's one commit a step, and no JS ever computed)
    assert counts[-1] == block


def test_decoding_with_less_commits_more_than_the_progress_rule():
    bench = _bench()
    vocab, gen = 512, 64
    steps = bench.trajectory(12, gen, vocab, worst_case=False)
    settings = DecodingSettings(gen_length=gen, block_length=32)
    _, counts = bench.time_strategy("less", {"tau_conf": 0.9, "window": 2, "js_delta": 1e-3},
                                    steps, settings, vocab - 1, decode=True)
    assert max(counts) > 1
