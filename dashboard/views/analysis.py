"""Analysis: which params matter (Optuna's fANOVA importance) and how they relate to a figure
(Optuna's parallel coordinates), over the trials evaluated to the end."""

import streamlit as st

from dashboard import charts, data, ui

url, name = data.storage_url(), ui.study()
st.title(f"Analysis · {name}")
target = st.radio("Explain", list(data.TARGETS), format_func=data.TARGETS.get, horizontal=True)
st.caption("Over the trials whose evaluation ran to the end (raced trials left out). Params are "
           "Optuna's: `1-tau_conf` is `1 - tau_conf`, searched on a log scale.")
with ui.guard():
    values = data.importances(url, name, target)
    figure = data.parallel_coordinates(url, name, target)
if not values or figure is None:
    st.info("Parameter importance needs at least two trials evaluated to the end.",
            icon=":material/info:")
    st.stop()
st.plotly_chart(charts.importance(values, data.TARGETS[target]), key="importance_chart")
figure.update_layout(height=460)
st.plotly_chart(figure, key="parallel_chart")
evaluated = int(data.trials(url, name)["kind"].isin(data.EVALUATED).sum())
if evaluated > data.PARALLEL_LINES:
    st.caption(f"A random sample of {data.PARALLEL_LINES} of the {evaluated} trials is drawn.")
