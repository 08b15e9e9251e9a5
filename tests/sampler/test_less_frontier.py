"""LESS with ``commit="frontier"``: the authors' Dream sampler's order, checked against a scalar
re-statement of that rule (one position at a time, in plain Python, as their Dream sampler is
described in ``sampler.strategies.less``) on a fake model whose predictions firm up as their
neighbours are committed, and on hand-made cases of each branch."""

from __future__ import annotations

import math

import pytest
import torch

import sampler
from sampler.stats import coarse_js_divergence
from sampler.strategies import Less
from sampler.strategies.less import (EOS_CONF, EOS_CONF_ANNEAL, EOS_CONF_FLOOR, EOS_JS_MULT,
                                     FRONTIER_LOOKAHEAD, FRONTIER_PATIENCE)

from .fakes import EOS, MASK, VOCAB, FakeModel, peaked

G = 24
ANSWER = torch.tensor([3, 4, 5, 6, 7, 8, 9, 10, 11, 3, 4, 5, 6, 7, 8, 9, 10, 11, EOS, EOS, EOS,
                       EOS, EOS, EOS])
BASE = torch.linspace(0.0, 1.0, G)[torch.randperm(G, generator=torch.Generator().manual_seed(3))]


def firming_model(answer: torch.Tensor = ANSWER) -> FakeModel:
    """Position j predicts answer[j] with a confidence that grows with the committed positions
    near it; some uncertain positions flip to another token from step to step (so persistence
    matters). A function of the sequence only, so a re-run sees the same logits."""
    def fn(x: torch.Tensor, call: int) -> torch.Tensor:
        b, length = x.shape
        out = torch.zeros(b, length, VOCAB)
        for r in range(b):
            gen = x[r, length - G:]
            done = (gen != MASK).float()
            near = torch.nn.functional.conv1d(done[None, None], torch.ones(1, 1, 5),
                                              padding=2)[0, 0]
            conf = (0.3 + 0.5 * BASE + 0.1 * near).clamp(max=0.97)
            tokens = answer.clone()
            flip = (BASE < 0.35) & (((done.sum().long() + torch.arange(G)) % 3) == 0)
            tokens[flip] = 3 + (tokens[flip] - 2) % 9
            out[r, length - G:] = peaked(tokens, conf)
        return out

    return FakeModel(fn)


def reference(model: FakeModel, prompt: list[int], tau: float, window: int, delta: float,
              steps: int = G) -> tuple[list[int], list[int], int]:
    """The Dream sampler's rule, one position at a time: (tokens, the step (1-based) each
    position was committed at, forward passes)."""
    x = torch.tensor(prompt + [MASK] * G)
    lp = len(prompt)
    history: dict[int, list[int]] = {}
    previous: dict[int, torch.Tensor] = {}
    wait, step_of, nfe = 0, [0] * G, 0
    for i in range(steps):
        masked = [p for p in range(lp, lp + G) if x[p] == MASK]
        if not masked:
            break
        logits = model(x[None].clone())[0].float()
        nfe += 1
        logits[:, MASK] = -math.inf
        accept, conf, top = {}, {}, {}
        for p in masked:
            probs = logits[p].softmax(-1)
            conf[p], top[p] = float(probs.max()), int(probs.argmax())
            seen = history.get(p, [])
            persistent = len(seen) >= window - 1 and all(t == top[p] for t in seen[-(window - 1):]
                                                         if window > 1)
            if p in previous:
                lse = torch.logsumexp(logits[p], -1)
                prev = previous[p]
                drift = float(coarse_js_divergence(logits[p][None], lse[None], prev[None],
                                                   torch.logsumexp(prev, -1)[None])[0])
            else:
                drift = math.inf
            ok = persistent and conf[p] >= tau and drift <= delta
            if top[p] == EOS:
                floor = max(EOS_CONF_FLOOR, EOS_CONF - EOS_CONF_ANNEAL * (i + 1) / steps)
                ok = ok and conf[p] >= floor and drift <= EOS_JS_MULT * delta
            accept[p] = ok
            history[p] = seen + [top[p]]
            previous[p] = logits[p]
        front = masked[0]
        if accept[front]:
            wait, chosen = 0, []
            for p in masked:
                if not accept[p]:
                    break
                chosen.append(p)
        else:
            ahead = [p for p in masked if accept[p] and front < p <= front + FRONTIER_LOOKAHEAD]
            if wait < FRONTIER_PATIENCE and ahead:
                chosen, wait = [max(ahead, key=lambda p: (conf[p], -p))], wait + 1
            else:
                chosen, wait = [front], 0
        for p in chosen:
            x[p] = top[p]
            step_of[p - lp] = nfe
    return x[lp:].tolist(), step_of, nfe


PARAMS = [(0.75, 3, 0.04), (0.6, 2, 0.1), (0.5, 1, 0.3), (0.9, 2, 0.2)]


@pytest.mark.parametrize("tau, window, delta", PARAMS)
def test_frontier_commits_in_the_dream_samplers_order(tau, window, delta):
    prompts = [[5, 6, 7], [8, 9, 10]]
    model = firming_model()
    strategy = Less({"tau_conf": tau, "window": window, "js_delta": delta, "commit": "frontier"})
    out = sampler.generate(model, torch.tensor(prompts), strategy=strategy, gen_length=G,
                           block_length=G, trace=True)
    for r, prompt in enumerate(prompts):
        tokens, step_of, nfe = reference(firming_model(), prompt, tau, window, delta)
        assert out.generated[r].tolist() == tokens
        assert out.trace.step[r].tolist() == step_of
        assert int(out.nfe[r]) == nfe
    # the frontier order is a different decode from committing every passing position
    everywhere = sampler.generate(model, torch.tensor(prompts), strategy=Less(
        {"tau_conf": tau, "window": window, "js_delta": delta}), gen_length=G, block_length=G,
        trace=True)
    assert not torch.equal(everywhere.trace.step, out.trace.step)


def test_every_step_commits_at_least_one_position_through_the_rule():
    out = sampler.generate(firming_model(), torch.tensor([[5, 6, 7]]),
                           strategy=Less({"commit": "frontier", "tau_conf": 0.99}), gen_length=G,
                           block_length=G, trace=True)
    assert int(out.nfe[0]) == G  # nothing passes at 0.99: the frontier, one position a step
    assert out.trace.step[0].tolist() == list(range(1, G + 1))  # left to right
    assert set(out.trace.cause_names()[0]) == {"rule"}  # never the progress rule's fallback


# ---- hand-made cases of each branch ----------------------------------------------------------

def _frontier_select(strategy, ready, confidence, rows=None):
    """``strategy._frontier`` on one step where ``ready`` (B, G) pass and all are masked."""
    from sampler import DecodingSettings, StatsTracker

    ready = torch.tensor(ready)
    b, g = ready.shape
    conf = torch.tensor(confidence, dtype=torch.float32)
    tracker = StatsTracker(DecodingSettings(gen_length=g), mask_id=VOCAB - 1)
    stats = tracker.update(peaked(torch.full((b, g), 3), conf),
                           masked=torch.ones(b, g, dtype=torch.bool),
                           in_block=torch.ones(b, g, dtype=torch.bool),
                           rows=torch.arange(b) if rows is None else torch.tensor(rows),
                           block_step=torch.zeros(b, dtype=torch.long))
    return strategy._frontier(stats, ready)[0].tolist()


def test_a_passing_frontier_commits_its_run_and_nothing_past_the_first_failure():
    strategy = Less({"commit": "frontier"})
    got = _frontier_select(strategy, [[True, True, False, True, True]], [[0.8] * 5])
    assert got == [True, True, False, False, False]


def test_a_failing_frontier_waits_twice_for_the_look_ahead_then_is_forced():
    strategy = Less({"commit": "frontier"})
    g = FRONTIER_LOOKAHEAD + 3
    ready = [[False, True, False, True] + [False] * (g - 4)]
    conf = [[0.3, 0.8, 0.5, 0.9] + [0.4] * (g - 4)]
    strategy._wait = None
    assert _frontier_select(strategy, ready, conf) == [False, False, False, True] + [False] * (g - 4)
    assert _frontier_select(strategy, ready, conf) == [False, False, False, True] + [False] * (g - 4)
    # patience spent: the frontier itself, whatever its confidence, and the count starts again
    assert _frontier_select(strategy, ready, conf) == [True] + [False] * (g - 1)
    assert _frontier_select(strategy, ready, conf)[3]


def test_the_look_ahead_reaches_sixteen_positions_past_the_frontier_and_no_further():
    g = FRONTIER_LOOKAHEAD + 3
    for where, picked in ((FRONTIER_LOOKAHEAD, True), (FRONTIER_LOOKAHEAD + 1, False)):
        ready = [[i == where for i in range(g)]]
        got = _frontier_select(Less({"commit": "frontier"}), ready, [[0.8] * g])
        assert got[where] is picked and got[0] is not picked


def test_ties_in_the_look_ahead_go_to_the_leftmost():
    got = _frontier_select(Less({"commit": "frontier"}), [[False, False, True, True]],
                           [[0.5, 0.5, 0.8, 0.8]])
    assert got == [False, False, True, False]


def test_the_patience_count_is_kept_per_sequence_of_the_batch():
    strategy = Less({"commit": "frontier"})
    ready = [[False, True, False]] * 2
    conf = [[0.5, 0.8, 0.5]] * 2
    strategy._wait = torch.zeros(2, dtype=torch.long)
    for _ in range(FRONTIER_PATIENCE):  # only row 1 is active: it spends its patience
        assert _frontier_select(strategy, ready[:1], conf[:1], rows=[1]) == [False, True, False]
    assert _frontier_select(strategy, ready[:1], conf[:1], rows=[1]) == [True, False, False]
    assert _frontier_select(strategy, ready[:1], conf[:1], rows=[0]) == [False, True, False]


def test_an_end_of_text_top1_needs_the_tighter_test():
    # two steps of the same distribution: persistent, drift 0; confidence 0.8 on EOS
    def model_of(token):
        return FakeModel(lambda x, call: peaked(torch.full(x.shape, token),
                                                torch.full(x.shape, 0.8)))

    params = {"commit": "frontier", "tau_conf": 0.7, "window": 2, "js_delta": 0.1}
    # 0.8 < max(0.55, 0.9 - 0.1 x progress) until the progress passes 1: never early
    eos = sampler.generate(model_of(EOS), torch.tensor([[5, 6]]), strategy=Less(params),
                           gen_length=4, block_length=4, trace=True)
    word = sampler.generate(model_of(3), torch.tensor([[5, 6]]), strategy=Less(params),
                            gen_length=4, block_length=4, trace=True)
    assert word.trace.step[0].tolist() == [1, 2, 2, 2]  # the frontier, then the whole run
    assert eos.trace.step[0].tolist() == [1, 2, 3, 4]   # EOS only one at a time from the frontier
    # the commit-everything order has no EOS rule
    plain = sampler.generate(model_of(EOS), torch.tensor([[5, 6]]),
                             strategy=Less({**params, "commit": "all"}), gen_length=4,
                             block_length=4, trace=True)
    assert plain.trace.step[0].tolist() == [1, 2, 2, 2]


def test_commit_is_validated_and_round_trips_through_a_profile(tmp_path):
    with pytest.raises(sampler.ConfigError, match="commit"):
        Less({"commit": "leftmost"})
    profile = sampler.Profile(strategy="less", params={"commit": "frontier"})
    path = sampler.save_profile(profile, tmp_path / "p.json")
    assert sampler.load_profile(path).params["commit"] == "frontier"
