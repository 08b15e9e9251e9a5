"""The figure builders and the selection reader, without Streamlit."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard import charts


def _trials(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "number": range(n), "kind": ["Pareto front", "dominated"] * (n // 2),
        "accuracy": [0.9] * n, "mean_nfe": [float(i % 30 + 1) for i in range(n)],
        "speedup": [2.0] * n, "quality_per_step": [2.0] * n,
        "held_out_accuracy": [float("nan")] * n, "held_out_mean_nfe": [float("nan")] * n,
        "params.tau_conf": [0.9] * n, "params.window": [2] * n})


def _refs() -> pd.DataFrame:
    return pd.DataFrame(columns=["study", "strategy", "number", "accuracy", "mean_nfe"])


def test_trial_number_is_the_first_custom_datum():
    fig = charts.pareto(_trials(4), baseline=None, floor=None, references=_refs(), title="t")
    front = next(t for t in fig.data if t.name == "Pareto front")
    assert [c[0] for c in front.customdata] == [0, 2]
    assert front.customdata[0][3] == "tau_conf=0.9, window=2"


def test_big_studies_are_drawn_with_webgl():
    small = charts.pareto(_trials(10), baseline=None, floor=None, references=_refs(), title="t")
    big = charts.pareto(_trials(charts.WEBGL_ABOVE + 2), baseline=None, floor=None,
                        references=_refs(), title="t")
    assert {t.type for t in small.data} == {"scatter"}
    assert {t.type for t in big.data} == {"scattergl"}


def test_accuracy_ticks_have_one_decimal_and_a_click_selects():
    fig = charts.pareto(_trials(4), baseline=None, floor=None, references=_refs(), title="t")
    assert fig.layout.yaxis.tickformat == ".1%"
    assert fig.layout.clickmode == "event+select" and fig.layout.dragmode == "zoom"


def test_the_front_view_leaves_the_full_step_baseline_at_the_edge():
    trials = _trials(6)  # front: NFE 1, 3, 5; dominated: 2, 4, 6
    baseline = {"accuracy": 0.95, "mean_nfe": 256.0}
    fig = charts.pareto(trials, baseline=baseline, floor=None, references=_refs(), title="t")
    low, high = fig.layout.xaxis.range
    assert low <= 1.0 and 5.0 <= high < 6.0  # the slowest dominated trial is past the front
    assert [a.text for a in fig.layout.annotations] == ["full-step baseline → NFE 256.0"]

    full = charts.pareto(trials, baseline=baseline, floor=None, references=_refs(), title="t",
                         x_axis="full")
    assert full.layout.xaxis.range is None and full.layout.xaxis.rangemode == "tozero"
    log = charts.pareto(trials, baseline=baseline, floor=None, references=_refs(), title="t",
                        x_axis="log")
    assert log.layout.xaxis.type == "log" and log.layout.xaxis.range is None
    with pytest.raises(ValueError, match="x_axis must be one of front, full, log"):
        charts.pareto(trials, baseline=baseline, floor=None, references=_refs(), title="t",
                      x_axis="wide")


def test_the_front_view_includes_held_out_figures():
    trials = _trials(4)
    trials.loc[2, "held_out_mean_nfe"] = 9.0  # trial 2 is on the front, held-out much slower
    fig = charts.pareto(trials, baseline=None, floor=None, references=_refs(), title="t")
    assert fig.layout.xaxis.range[1] > 9.0


def _analysis_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "number": range(5), "quality_per_step": [1.0, 3.0, 2.0, 5.0, 4.0],
        "mean_nfe": [20.0, 8.0, 12.0, 5.0, 6.0],
        "params.tau_conf": [0.5, 0.9, 0.99, 0.999, 0.95], "params.window": [1, 2, 3, 2, 1],
        "params.js_delta": [1e-4, 1e-3, 1e-2, 3e-3, 5e-4],
        "params.cache": ["none", "dual", "dual", "none", "dual"]})


def _brightness(color: str) -> int:
    """R + G + B of ``#rrggbb``: 765 is white."""
    return sum(int(color[i:i + 2], 16) for i in (1, 3, 5))


SCALES = {"tau_conf": "log1m", "window": "int", "js_delta": "log", "cache": "categorical"}


def test_param_scales_follow_the_search_space():
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)

    found = charts.param_scales({"1-tau_conf": FloatDistribution(0.01, 0.5, log=True),
                                 "window": IntDistribution(1, 6),
                                 "js_delta": FloatDistribution(1e-4, 5e-2, log=True),
                                 "cache": CategoricalDistribution(["none", "dual"]),
                                 "factor": FloatDistribution(0.5, 2.0)})
    assert found == SCALES | {"factor": "linear"}


def test_parallel_coordinates_draw_the_best_trials_darkest_and_on_top():
    fig = charts.parallel(_analysis_rows(), target="quality_per_step", label="quality per step",
                          lower_is_better=False, scales=SCALES)
    lines = fig.data[0]
    assert list(lines.line.color) == [1.0, 2.0, 3.0, 4.0, 5.0]  # the best drawn last
    assert not lines.line.reversescale  # the highest value takes the scale's last colour
    light, dark = lines.line.colorscale[0][1], lines.line.colorscale[-1][1]
    assert _brightness(dark) < 150 and _brightness(light) < 600  # light, yet visible on white
    assert lines.dimensions[0].label == "quality per step"

    nfe = charts.parallel(_analysis_rows(), target="mean_nfe", label="mean NFE",
                          lower_is_better=True, scales=SCALES)
    assert list(nfe.data[0].line.color) == [20.0, 12.0, 8.0, 6.0, 5.0]
    assert nfe.data[0].line.reversescale  # fewest NFE: darkest


def test_parallel_axes_show_each_param_on_its_search_scale():
    dims = {d.label: d for d in charts.parallel(
        _analysis_rows(), target="quality_per_step", label="q", lower_is_better=False,
        scales=SCALES).data[0].dimensions}
    tau = dims["tau_conf (log scale of 1 - x)"]
    assert list(tau.ticktext) == ["0.9", "0.99", "0.999"]  # decades of 1 - tau_conf
    assert list(dims["js_delta (log scale)"].ticktext) == ["0.0001", "0.001", "0.01"]
    assert list(dims["window"].tickvals) == [1, 2, 3]
    assert list(dims["cache"].ticktext) == ["dual", "none"]


def test_parallel_draws_a_sample_of_big_studies():
    rows = pd.concat([_analysis_rows()] * 10, ignore_index=True)
    fig = charts.parallel(rows, target="quality_per_step", label="q", lower_is_better=False,
                          scales=SCALES, limit=7)
    assert len(fig.data[0].line.color) == 7


def test_selected_trials_reads_custom_data_and_skips_reference_points():
    event = {"selection": {"points": [
        {"curve_number": 2, "customdata": [7, 2.0, 1.5, "tau_conf=0.9"]},
        {"curve_number": 0, "x": 3.0, "y": 0.8},                      # a reference front
        {"curve_number": 4, "customdata": [3, 2.0, 1.5, ""]},
        {"curve_number": 5, "customdata": [7, 2.0, 1.5, ""]},          # held-out twin of 7
    ], "point_indices": [], "box": [{}], "lasso": []}}
    assert charts.selected_trials(event) == [3, 7]
    assert charts.selected_trials({"selection": {"points": []}}) == []
    assert charts.selected_trials(None) == []


def test_timeline_marks_each_commit_once():
    trace = {"step": [1, 2, 2], "cause": ["rule", "min_commit", "eos_fill"],
             "tokens": ["4", "2", "<eos>"], "confidence": [0.99, 0.5, 0.9],
             "persistence": [1, 2, 2], "js": [float("inf"), 1e-3, 1e-4]}
    z = charts.timeline(trace).data[0].z
    assert [list(row) for row in z] == [[2, 0, 0], [1, 3, 5]]
