"""The evaluation engine: forward-pass reuse is exact, racing stops hopeless trials."""

from __future__ import annotations

import sampler
from tuner import TASKS, Evaluator, LogitsCache

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


def test_cache_is_bounded():
    import torch

    cache = LogitsCache(max_bytes=10_000)
    for i in range(100):
        cache.put(bytes([i]) * 8, torch.zeros(100))  # 408 bytes each
    assert cache.bytes <= 10_000 and len(cache) < 100
    assert cache.get(bytes([99]) * 8) is not None and cache.get(bytes([0]) * 8) is None


def test_racing_stops_when_the_floor_is_out_of_reach(smoke_model):
    task = TASKS["arith"]
    evaluator = Evaluator(smoke_model, task, task.examples("tune", 24), SETTINGS, batch_size=8)
    result = evaluator.run(sampler.make_strategy("threshold", {"threshold": 0.5}), floor=0.9)
    # an untrained model gets (nearly) nothing right: after 8 of 24, 90% is out of reach
    assert not result.complete and result.n == 8 and result.n_total == 24
    full = evaluator.run(sampler.make_strategy("threshold", {"threshold": 0.5}))
    assert full.complete and full.n == 24
