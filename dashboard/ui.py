"""Widgets shared by the pages: the sidebar (storage, study picker), the trial picker, and the
one-line error box.

The chosen study and trial live in ``st.session_state`` under keys of their own ("study",
"trial:<study>"), not under a widget's key, so that they survive pages that do not draw the widget
(Streamlit forgets the state of widgets it did not draw).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pandas as pd
import streamlit as st

from sampler import SamplerError
from tuner.errors import TunerError
from tuner.storage import mask_url

from . import data

__all__ = ["sidebar", "study", "trial", "set_trial", "trial_picker", "guard", "pct", "fmt"]

ERRORS = (TunerError, SamplerError)
"""Errors raised on purpose by the tuner and the sampler: shown as one line, not a traceback."""


@contextmanager
def guard(stop: bool = True) -> Iterator[None]:
    """Show a tuner / sampler error as one line (and stop the page unless ``stop`` is False)."""
    try:
        yield
    except ERRORS as err:
        st.error(str(err), icon=":material/error:")
        if stop:
            st.stop()


def _remember(widget: str, key: str) -> None:
    st.session_state[key] = st.session_state[widget]


def sidebar() -> None:
    """Storage, study picker and reload button. Stops the page with a message when the storage
    cannot be read or holds no study."""
    url = data.storage_url()
    st.sidebar.caption(f"Storage: `{mask_url(url)}`")
    if st.sidebar.button("Reload data", icon=":material/refresh:",
                         help=f"Studies are re-read at most every {data.TTL} s; this reads "
                              "them now."):
        data.reload()
    try:
        names = data.study_names(url)
    except ERRORS as err:
        st.error(f"Cannot read the study storage: {err}", icon=":material/error:")
        st.stop()
    if not names:
        st.info(f"No studies in `{mask_url(url)}` yet. Create one with "
                "`tuner optimize --task arith`, or point the dashboard at another database with "
                "`tuner dashboard --storage URL`.", icon=":material/info:")
        st.stop()
    if st.session_state.get("study") not in names:
        st.session_state["study"] = names[-1]
    st.session_state["study_picker"] = st.session_state["study"]
    st.sidebar.selectbox("Study", names, key="study_picker", on_change=_remember,
                         args=("study_picker", "study"))


def study() -> str:
    """The study chosen in the sidebar."""
    return st.session_state["study"]


def set_study(name: str) -> None:
    st.session_state["study"] = name


def trial(name: str) -> int | None:
    return st.session_state.get(f"trial:{name}")


def set_trial(name: str, number: int) -> None:
    st.session_state[f"trial:{name}"] = number


def _label(row) -> str:
    if pd.isna(row.accuracy):
        return f"#{row.number} · {row.kind}"
    return f"#{row.number} · {row.kind} · accuracy {row.accuracy:.1%} · NFE {row.mean_nfe:.2f}"


def trial_picker(name: str, trials: pd.DataFrame) -> int | None:
    """A selectbox of the study's finished trials, starting at the trial selected on the Pareto
    page (else the front's best quality per step); the choice is remembered for the other pages."""
    rows = trials[trials["kind"].isin(data.KINDS)]
    if not len(rows):
        st.info("This study has no finished trial yet.", icon=":material/info:")
        return None
    numbers = [int(n) for n in rows["number"]]
    chosen = trial(name)
    if chosen not in numbers:
        best = rows[rows["kind"] == "Pareto front"].nlargest(1, "quality_per_step")["number"]
        chosen = int(best.iloc[0]) if len(best) else numbers[0]
        set_trial(name, chosen)
    labels = {int(r.number): _label(r) for r in rows.itertuples(index=False)}
    key = f"trial_picker:{name}"
    st.session_state[key] = chosen
    st.selectbox("Trial", numbers, key=key, format_func=labels.get, on_change=_remember,
                 args=(key, f"trial:{name}"))
    return chosen


def pct(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.1%}"


def fmt(value: object) -> str:
    """A figure for a table: 4 significant digits, "–" when missing."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
