"""Figures of a result against its full-step baseline: QPS and d3LLM's AUP as trial metrics."""

from __future__ import annotations

import pytest

from tuner.aup import aup
from tuner.figures import Baseline, aup_of, relative_figures
from tuner.objectives import OBJECTIVES

BASE = Baseline(accuracy=0.80, mean_nfe=32.0, n=100)


def test_aup_of_a_trial_is_the_two_point_curve_from_full_step():
    # 4x fewer forwards for the same tokens: full-step's tokens per forward is a quarter of ours
    value = aup_of(0.79, tokens_per_forward=8.0, mean_nfe=8.0, baseline=BASE)
    assert value == pytest.approx(aup([2.0, 8.0], [80.0, 79.0], 80.0))
    # hand-computed: 2 x 80 + (8 - 2) x (80 + 79 exp(-3 (1 - 79/80))) / 2
    import math
    assert value == pytest.approx(160 + 3 * (80 + 79 * math.exp(-3 / 80)))


def test_aup_is_zero_where_d3llm_refuses_the_curve_and_grows_with_parallelism():
    assert aup_of(0.70, 8.0, 8.0, BASE) == 0.0  # 10 points below full-step
    slow, fast = aup_of(0.80, 4.0, 16.0, BASE), aup_of(0.80, 8.0, 8.0, BASE)
    assert 0 < slow < fast


def test_relative_figures_carry_aup_when_given_tokens_per_forward_and_the_objective_reads_it():
    figures = relative_figures(0.8, 8.0, BASE, 4.0, tokens_per_forward=8.0)
    assert figures["quality_per_step"] == pytest.approx(4.0)
    assert figures["aup"] == pytest.approx(aup_of(0.8, 8.0, 8.0, BASE))
    assert "aup" not in relative_figures(0.8, 8.0, BASE, 4.0)
    assert OBJECTIVES["aup"].values(figures) == pytest.approx(figures["aup"])


def test_aup_reads_full_step_s_own_tokens_per_forward_when_the_baseline_has_it():
    measured = Baseline(accuracy=0.80, mean_nfe=32.0, n=100, tokens_per_forward=0.9)
    assert aup_of(0.79, 8.0, 8.0, measured) == pytest.approx(aup([0.9, 8.0], [80.0, 79.0], 80.0))
    # stored and read back; a baseline stored before the field existed reads as None
    assert Baseline.from_json(measured.to_json()) == measured
    legacy = '{"accuracy": 0.8, "mean_nfe": 32.0, "n": 100, "scores": []}'
    assert Baseline.from_json(legacy) == BASE and BASE.tokens_per_forward is None
