"""Studies: every study in the storage, one row each; a click chooses the study for the others."""

import streamlit as st

from dashboard import data, ui

url = data.storage_url()
st.title("Studies")
with ui.guard():
    table = data.studies(url)


def _choose() -> None:
    rows = st.session_state["studies_table"].selection.rows
    if rows:
        ui.set_study(table["study"].iloc[rows[0]])


st.caption("Every study in the storage. Select a row to open that study on the other pages. "
           "*Best quality/step* is the feasible trial with the highest speed-up × (accuracy / "
           "baseline accuracy)^γ.")
st.dataframe(
    table, hide_index=True, key="studies_table", on_select=_choose, selection_mode="single-row",
    column_config={
        "study": st.column_config.TextColumn("study", pinned=True),
        "complete": st.column_config.NumberColumn("complete", help="finished trials (raced "
                                                  "included)"),
        "raced": st.column_config.NumberColumn("raced", help="stopped early: could no longer "
                                               "reach the accuracy floor"),
        "running": st.column_config.NumberColumn("running / waiting"),
        "baseline_accuracy": st.column_config.NumberColumn("baseline accuracy", format="percent"),
        "baseline_mean_nfe": st.column_config.NumberColumn("baseline NFE", format="%.2f"),
        "best_quality_per_step": st.column_config.NumberColumn("best quality/step",
                                                               format="%.3f"),
        "best_trial": st.column_config.NumberColumn("best trial", format="%d"),
        "last_update": st.column_config.DatetimeColumn("last update",
                                                       format="YYYY-MM-DD HH:mm"),
    })
