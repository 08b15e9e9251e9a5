"""The figure builders and the selection reader, without Streamlit."""

from __future__ import annotations

import pandas as pd

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
