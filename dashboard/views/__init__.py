"""The dashboard's pages: Streamlit scripts run by ``st.navigation`` in ``dashboard/app.py``."""
