"""The evaluation engine: forward-pass reuse is exact, racing stops hopeless trials, decoding is
timed with the device synchronised."""

from __future__ import annotations

import math
import time

import pytest
import torch

import sampler
from tuner import TASKS, Evaluator, LogitsCache
from tuner.timing import Stopwatch

SETTINGS = sampler.DecodingSettings(gen_length=32, eos_fill=True)


def _runs(model, cache):
    task = TASKS["arith"]
    evaluator = Evaluator(model, task, task.examples("tune", 24), SETTINGS, batch_size=8, cache=cache)
    results = []
    for params in ({"tau_conf": 0.5, "window": 1, "js_delta": 0.5},
                   {"tau_conf": 0.6, "window": 1, "js_delta": 0.5},
                   {"tau_conf": 0.6, "window": 2, "js_delta": 0.1}):
        results.append(evaluator.run(sampler.make_strategy("less", params)))
    results.append(evaluator.run(sampler.strategies.Fixed.full_step(SETTINGS)))
    return results


def test_reuse_is_exact_and_saves_forward_passes(smoke_model):
    cache = LogitsCache()
    reused, plain = _runs(smoke_model, cache), _runs(smoke_model, None)
    for a, b in zip(reused, plain):
        assert [(o.completion, o.nfe, o.score) for o in a.outcomes] == \
               [(o.completion, o.nfe, o.score) for o in b.outcomes]
    assert sum(r.forward_rows for r in reused) < sum(r.forward_rows for r in plain)
    assert reused[1].cache_hit_rate > 0          # the second trial shares the first's first steps
    assert all(r.cache_hits == 0 for r in plain)
    assert all(r.forward_rows == r.total_nfe for r in plain)


def test_timings_are_measured_and_say_whether_they_reused(smoke_model):
    task = TASKS["arith"]
    examples = task.examples("tune", 24)
    strategy = sampler.make_strategy("less", {"tau_conf": 0.5, "window": 1, "js_delta": 0.5})
    plain = Evaluator(smoke_model, task, examples, SETTINGS, batch_size=8).run(
        strategy, keep_tokens=True)
    reused = Evaluator(smoke_model, task, examples, SETTINGS, batch_size=8,
                       cache=LogitsCache()).run(strategy)
    for result in (plain, reused):
        m = result.metrics()
        assert m["wall_s"] > 0 and math.isfinite(m["wall_s"])
        assert m["seconds_per_example"] == pytest.approx(m["wall_s"] / 24)
        assert m["tokens_per_second"] == pytest.approx(result.generated_tokens / m["wall_s"])
        assert math.isfinite(m["tokens_per_second"]) and m["tokens_per_second"] >= 0
    assert plain.metrics()["timed_with_reuse"] == 0 and reused.metrics()["timed_with_reuse"] == 1
    # generated tokens: the completions' tokens, end-of-text fill and other special tokens left out
    special = set(smoke_model.tokenizer.all_special_ids)
    assert plain.generated_tokens == sum(t not in special for t in plain.tokens.flatten().tolist())
    assert plain.generated_tokens == reused.generated_tokens <= 24 * SETTINGS.gen_length


def test_tokens_per_forward_counts_answer_tokens_as_d3llm_does():
    """TPF = the answers' tokens (end-of-text fill left out) over the forward passes, so full-step,
    which commits one token a pass, is at most 1 token per forward (d3LLM's AR reference point)."""
    task = TASKS["arith"]
    model = sampler.load_model("tiny-arith")  # a trained model: its answers end before gen_length
    evaluator = Evaluator(model, task, task.examples("tune", 16), SETTINGS, batch_size=8)
    full = evaluator.run(sampler.strategies.Fixed.full_step(SETTINGS))
    fast = evaluator.run(sampler.make_strategy("threshold", {"threshold": 0.5}))
    for result in (full, fast):
        assert result.tokens_per_forward == pytest.approx(result.generated_tokens / result.total_nfe)
    assert 0 < full.tokens_per_forward <= 1
    assert full.tokens_per_forward < SETTINGS.gen_length / full.mean_nfe  # the fill is not counted


def test_stopwatch_adds_up_the_timed_blocks_only():
    watch = Stopwatch("cpu")
    for _ in range(2):
        with watch:
            time.sleep(0.01)
    time.sleep(0.2)  # outside the blocks: not counted
    assert 0.02 <= watch.seconds < 0.2


def test_stopwatch_synchronises_cuda_at_both_ends(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    watch = Stopwatch("cuda:0")
    with watch:
        assert len(calls) == 1  # queued work before the block is not counted
    assert calls == [torch.device("cuda:0")] * 2


@pytest.mark.parametrize("policy", ["shallow", "lru"])
def test_cache_is_bounded(policy):
    cache = LogitsCache(max_bytes=10_000, policy=policy)
    for i in range(100):
        cache.put(bytes([i]) * 8, torch.zeros(100))  # 408 bytes each, all equally shallow
    assert cache.bytes <= 10_000 and len(cache) < 100 and cache.evictions == 100 - len(cache)
    assert cache.get(bytes([99]) * 8) is not None and cache.get(bytes([0]) * 8) is None


def test_a_full_cache_evicts_the_deepest_state_first_and_lru_the_oldest():
    def fill(policy):
        cache = LogitsCache(max_bytes=3 * 408, policy=policy)
        cache.put(b"a" * 8, torch.zeros(100), masked=32)  # the first step: everything masked
        cache.put(b"b" * 8, torch.zeros(100), masked=5)
        cache.put(b"c" * 8, torch.zeros(100), masked=20)
        cache.get(b"b" * 8)  # b is now the most recently used
        cache.put(b"d" * 8, torch.zeros(100), masked=20)  # full: one must go
        return {k for k in (b"a", b"b", b"c", b"d") if cache.peek(k * 8) is not None}

    assert fill("shallow") == {b"a", b"c", b"d"}  # b: the fewest masked positions
    assert fill("lru") == {b"b", b"c", b"d"}      # a: the least recently used


def test_the_cache_reports_how_much_it_answered_and_whether_it_was_full():
    cache = LogitsCache(max_bytes=2 * 408)
    assert cache.summary() == "forward-pass reuse: nothing looked up"
    for i in range(3):
        assert cache.get(bytes([i]) * 8) is None
        cache.put(bytes([i]) * 8, torch.zeros(100))
    cache.get(bytes([2]) * 8)
    line = cache.summary()
    assert "25.0% of 4 model rows answered from the cache (2 rows" in line
    assert "1 evicted: a larger --reuse-gib may reuse more" in line
    with pytest.raises(ValueError, match="policy must be one of shallow, lru"):
        LogitsCache(policy="fifo")


def test_reuse_is_exact_under_a_cache_too_small_for_the_study(smoke_model):
    plain, whole = _runs(smoke_model, None), LogitsCache()
    _runs(smoke_model, whole)
    for policy in ("shallow", "lru"):
        cache = LogitsCache(max_bytes=whole.bytes // 3, policy=policy)
        small = _runs(smoke_model, cache)
        assert cache.evictions > 0
        for a, b in zip(small, plain):
            assert [(o.completion, o.nfe) for o in a.outcomes] == \
                   [(o.completion, o.nfe) for o in b.outcomes]


def test_racing_stops_when_the_floor_is_out_of_reach(smoke_model):
    task = TASKS["arith"]
    evaluator = Evaluator(smoke_model, task, task.examples("tune", 24), SETTINGS, batch_size=8)
    result = evaluator.run(sampler.make_strategy("threshold", {"threshold": 0.5}), floor=0.9)
    # an untrained model gets (nearly) nothing right: after 8 of 24, 90% is out of reach
    assert not result.complete and result.n == 8 and result.n_total == 24
    full = evaluator.run(sampler.make_strategy("threshold", {"threshold": 0.5}))
    assert full.complete and full.n == 24
