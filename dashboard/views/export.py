"""Export: the chosen trial as a profile, through `tuner.validate.export` (the same code as
`tuner export`): shown, offered as a download, and saved into the profiles folder
(``$TUNER_PROFILES``) under a file name, never elsewhere; an existing file is replaced only when
the user ticks the box."""

import json
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import data, ui

url, name = data.storage_url(), ui.study()
with ui.guard():
    snap = data.snapshot(url, name)
    trials = data.trials(url, name)
st.title(f"Export · {name}")
number = ui.trial_picker(name, trials)
if number is None:
    st.stop()
row = trials[trials["number"] == number].iloc[0]
if row["kind"] != "Pareto front":
    st.warning(f"Trial {number} is {row['kind']}, not on the feasible Pareto front.",
               icon=":material/warning:")
if pd.notna(row["held_out_tokens_per_second"]):  # validated, timed without reuse
    st.info(f"Held-out figures are stored: accuracy {row['held_out_accuracy']:.1%}, mean NFE "
            f"{row['held_out_mean_nfe']:.2f}, {row['held_out_tokens_per_second']:.4g} tokens/s, "
            f"{row['held_out_seconds_per_example']:.4g} s/example (decoded without forward-pass "
            "reuse: the production cost). The profile carries them.",
            icon=":material/verified:")
else:
    n_test = (snap.user_attrs.get("spec") or {}).get("n_test", "?")
    done = "is not validated yet" if pd.isna(row["held_out_accuracy"]) else \
        "was validated by an earlier version, which timed it with forward-pass reuse"
    st.info(f"Trial {number} {done}: exporting first decodes the {n_test} held-out examples with "
            "its params, without reuse (this can take a while), and stores the figures.",
            icon=":material/hourglass_top:")

# Saving is confined to the profiles folder ($TUNER_PROFILES): the page takes a file name, never a
# path, and replaces an existing file only when asked (anyone who reaches the page can click).
st.caption(f"Profiles are saved into `{data.profiles_dir()}` (set by `$TUNER_PROFILES`).")
default_name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{name}-trial{number}.json").lstrip(".-_") \
    or f"trial{number}.json"
file_name = st.text_input("File name", default_name,
                          help="A name only (letters, digits, '.', '_', '-'), ending in .json.")
overwrite = st.checkbox("Replace an existing profile of that name", value=False,
                        key="export_overwrite")
if st.button("Export profile", type="primary", icon=":material/file_export:", key="export_button"):
    with ui.guard(), st.spinner(f"Exporting trial {number}…"):
        profile, path = data.export_profile(url, name, number, file_name, overwrite=overwrite)
        st.session_state["exported"] = {"study": name, "trial": number, "path": str(path),
                                      "text": json.dumps(profile.to_dict(), indent=2) + "\n"}

done = st.session_state.get("exported")
if done and done["study"] == name and done["trial"] == number:
    st.success(f"Saved `{done['path']}`. Load it with `sampler.load_profile(path)`.",
               icon=":material/check_circle:")
    st.download_button("Download profile", done["text"], file_name=Path(done["path"]).name,
                       mime="application/json", on_click="ignore", icon=":material/download:")
    st.code(done["text"], language="json")
