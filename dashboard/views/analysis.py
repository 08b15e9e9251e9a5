"""Analysis: which params matter (Optuna's PED-ANOVA importance) and how they relate to a figure
(parallel coordinates), over the trials evaluated to the end."""

import streamlit as st

from dashboard import charts, data, ui

url, name = data.storage_url(), ui.study()
with ui.guard():
    snap = data.snapshot(url, name)
    trials = data.trials(url, name)
st.title(f"Analysis · {name}")
target = st.radio("Explain", list(data.TARGETS), format_func=data.TARGETS.get, horizontal=True)
dimensions = snap.distributions
st.caption("Over the trials whose evaluation ran to the end (raced trials left out). "
           + ui.describe_space(snap.identity.get("strategy", "?"), dimensions))
with ui.guard():
    values = data.importances(url, name, target)
evaluated = trials[trials["kind"].isin(data.EVALUATED)] if len(trials) else trials
if not values or len(evaluated) < 2:
    st.info("Parameter importance needs at least two trials evaluated to the end.",
            icon=":material/info:")
    st.stop()
st.plotly_chart(charts.importance(values, data.TARGETS[target]), key="importance_chart")
st.plotly_chart(charts.parallel(evaluated, target=target, label=data.TARGETS[target],
                                lower_is_better=target in data.LOWER_IS_BETTER,
                                scales=charts.param_scales(dimensions),
                                limit=data.PARALLEL_LINES), key="parallel_chart")
if len(evaluated) > data.PARALLEL_LINES:
    st.caption(f"A random sample of {data.PARALLEL_LINES} of the {len(evaluated)} trials is drawn.")
