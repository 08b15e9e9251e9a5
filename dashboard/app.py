"""The dashboard's entry point: ``streamlit run dashboard/app.py`` (what ``tuner dashboard`` runs).

The storage is ``$TUNER_STORAGE`` (else the tuner's default SQLite file); exported profiles are
saved into ``$TUNER_PROFILES`` (else ``studies/profiles/``).
"""

from pathlib import Path

import streamlit as st

from dashboard import ui

# Not "pages/": a folder of that name beside this script turns on Streamlit's legacy multipage
# mode, which may run a page without running this script first.
VIEWS = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="LESS tuner", page_icon=":material/speed:", layout="wide")
page = st.navigation([
    st.Page(VIEWS / "studies.py", title="Studies", icon=":material/table_rows:", default=True),
    st.Page(VIEWS / "pareto.py", title="Pareto front", icon=":material/scatter_plot:"),
    st.Page(VIEWS / "trial.py", title="Trial", icon=":material/view_timeline:"),
    st.Page(VIEWS / "analysis.py", title="Analysis", icon=":material/insights:"),
    st.Page(VIEWS / "export.py", title="Export", icon=":material/download:"),
])
ui.sidebar()
page.run()
