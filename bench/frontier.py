"""The side-by-side benchmark: every strategy tuned on the same model, data and trial budget.

On a bundled model and task (`--task arith`, the default, or `cot` once `tiny-cot` is bundled),
in one run: tunes every member of the sampler family alone (`less` as published, `less+ext` with
its extensions, `threshold`, `factor`, `klass`, `entropy_bound`, `sched`, `fixed`, and `ni` when
the model has a trained indicator) and the `auto` study over all of them, each with the same
number of trials on the tuning split and the same accuracy floor (full-step - 0.5 point, the
iso-accuracy line, unless `--tolerance` says otherwise); validates each Pareto front on the
held-out split (a plain decode, timed), and measures full-step decoding and the oracle there.
With `--edit DIR` (a `tuner finetune-edit` output), EDIT's early stop is tuned on top of the best
single study's profile. With `--cache none,prefix,dual` every study runs once per block-cache
mode (native LLaDA / Dream models). Then compares TPE, GP and random sampling on the `auto` space
(hypervolume against trials), counts the forward passes and wall time that reuse + racing save on
the `auto` study, and checks issue 12's targets (the `auto` study against the best single study,
extended LESS against the tuned threshold, the best profile against the oracle).

    python bench/frontier.py                 # full run (tens of minutes on 2 CPU cores)
    python bench/frontier.py --quick         # a few minutes: fewer trials and examples
    python bench/frontier.py --task gsm8k --model GSAI-ML/LLaDA-8B-Instruct --device cuda \
        --cache none,dual                    # the same comparison at LLaDA scale, on a GPU

A run on a CPU takes hours (`--task cot`): with `--work DIR` it survives being stopped.

    python bench/frontier.py --task cot --work runs/frontier-cot
    # interrupted (Ctrl-C, SIGTERM, the session ended)? run the same command again

DIR keeps the run's Optuna storage (bench.db) and progress.json: the run's settings (task, model,
device, studies, trials, split sizes, tolerance, cache modes, indicator, EDIT folder, the spec),
the wall time so far and each part as soon as it finishes (the reference runs, each study per
cache mode, EDIT, each Optuna sampler's curve, the reuse-off rerun). Running the command again
takes those parts from progress.json ("resumed: ...") and computes the rest; a part cut off
mid-way is redone from its start. Other settings in the same DIR are refused (use another --work
or the same flags). Ctrl-C and SIGTERM stop between writes, exit status 130. Without `--work` the
storage is a temporary folder and nothing is kept.

Writes bench/results/<task>.json (raw figures), <task>.md (the tables) and <task>.png (fronts
against NFE and against seconds per example) / <task>-tuners.png (arith keeps its older name
tuners.png), and <task>-cache.png with several cache modes.
Hypervolume: of the held-out front in (accuracy, NFE / full-step NFE), accuracy maximised and the
NFE fraction minimised, against the reference point (accuracy 0, NFE fraction 1): 1.0 would be
perfect accuracy at zero cost; full-step decoding alone scores 0.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import json
import logging
import platform
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn, TypeVar

import optuna
import torch

import sampler
from sampler.artifacts import file_sha256
from sampler.atomic import write_text_atomically
from sampler.edit_map import MAP_FILE
from sampler.zoo import bundled_path
from tuner import StudyRunner, UsageError, load_spec, validate
from tuner.family import AUTO, EXTENDED, default_arms, parse_arm
from tuner.study import front, hypervolume, trial_metrics
from tuner.tasks import hash_examples
from tuner.validate import best_trial

ISO_TOLERANCE = 0.005   # "iso-accuracy": held-out accuracy >= full-step accuracy - 0.5 point
CACHES = ("none", "prefix", "dual")
INDICATOR_FILE = "ni-indicator.safetensors"  # a bundled model's trained NI indicator
# issue 12's targets
AUTO_NFE_MARGIN = 1.05  # the auto study's best profile: NFE <= 1.05 x the best single study's
ORACLE_MULTIPLE = 2.5   # the best profile's NFE within 2.5 x the oracle's
# --work DIR: a run that can be stopped and resumed
PROGRESS_FILE = "progress.json"  # the run's settings, wall time so far and finished parts
DB_FILE = "bench.db"             # the run's Optuna storage (SQLite)
INTERRUPTED = 130                # exit status of a run stopped by Ctrl-C or SIGTERM

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one run measures: the studies, the cache modes and the trained files they read."""

    studies: list[str]
    caches: list[str]
    indicator: str | None = None   # NI's indicator file: `ni` joins the run (and `auto`'s arms)
    edit: Path | None = None       # a `tuner finetune-edit` folder: EDIT on top of the best

    @functools.cached_property
    def indicator_sha256(self) -> str:
        """The indicator file's SHA-256, read once for every study that fixes it."""
        return file_sha256(self.indicator)

    @functools.cached_property
    def edit_sha256(self) -> str:
        """The SHA-256 of the EDIT folder's reasoning map (a re-run fine-tuning changes it)."""
        return file_sha256(self.edit / MAP_FILE)

    def spec_of(self, spec, name: str, cache: str):
        """The spec of study ``name`` under block-cache mode ``cache``."""
        if name == AUTO:
            arms = [n for n in self.studies if n != AUTO]
            out = spec.with_overrides(strategy=AUTO, strategies=arms, cache=cache)
        else:
            out = spec.with_overrides(strategy=name, cache=cache)
        if self.indicator and (name == "ni" or (name == AUTO and "ni" in self.studies)):
            out = dataclasses.replace(out, search={**out.search, "indicator": self.indicator,
                                                   "indicator_sha256": self.indicator_sha256})
        return out


def studies(spec, indicator: str | None = None) -> list[str]:
    """Every study of the run: each default arm of the family alone (and `ni` when a trained
    indicator is at hand), then `auto` over them."""
    return [*default_arms(spec.decoding), *(["ni"] if indicator else []), AUTO]


def bundled_indicator(model_name: str) -> str | None:
    """The bundled model's trained NI indicator file, if it has one."""
    try:
        path = bundled_path(model_name) / INDICATOR_FILE
    except sampler.SamplerError:
        return None
    return str(path) if path.is_file() else None


def read_progress(path: Path) -> dict:
    """The progress file ``path`` as :meth:`Progress.save` wrote it (refused in one line if not)."""
    try:
        data = json.loads(path.read_text())
        if not (isinstance(data.get("settings"), dict) and isinstance(data.get("parts"), dict)):
            raise ValueError("no settings or parts")
    except (OSError, ValueError, AttributeError) as err:
        fail(f"--work {path.parent}: {path.name} is not a frontier.py progress file ({err}); "
             "use another --work DIR")
    return data


def settings_diff(stored: dict, settings: dict) -> list[str]:
    """The settings that differ between a stored run and this one, each as 'key X there, Y now'."""
    keys = sorted(stored.keys() | settings.keys())
    return [f"{key} {stored.get(key)!r} there, {settings.get(key)!r} now"
            for key in keys if stored.get(key) != settings.get(key)]


class Progress:
    """The parts of a run finished so far (key -> what the run reports of it), with the run's
    settings, the weights' fingerprint, the task data's hash and the wall time of its earlier
    segments: kept in ``--work DIR``'s progress.json, rewritten atomically as each part
    finishes, or in memory only without ``--work``."""

    def __init__(self, path: Path | None, settings: dict, parts: dict | None = None,
                 elapsed_s: float = 0.0, fingerprint: str | None = None,
                 data_hash: str | None = None) -> None:
        self.path, self.settings = path, settings
        self.parts = dict(parts or {})
        self.earlier_s = elapsed_s        # wall time of the run's earlier segments
        self.fingerprint = fingerprint    # the model's weights as the run's first segment read them
        self.data_hash = data_hash        # the tuning and held-out examples it read
        self.started = time.perf_counter()
        self.working = False              # this segment has started computing a part

    @classmethod
    def open(cls, work: Path | None, settings: dict) -> Progress:
        """The run in folder ``work``: a new one, or the one found there (refused in one line,
        before anything is loaded or written, when it was started with other settings)."""
        settings = json.loads(json.dumps(settings))  # as progress.json will hold them
        if work is None:
            return cls(None, settings)
        path = work / PROGRESS_FILE
        if not path.exists():
            return cls(path, settings)
        data = read_progress(path)
        differ = settings_diff(data["settings"], settings)
        if differ:
            fail(f"--work {work} holds a run with other settings ({'; '.join(differ)}): use "
                 "another --work DIR or the same flags as that run")
        if data["parts"] and not (work / DB_FILE).is_file():
            fail(f"--work {work}: {PROGRESS_FILE} lists finished parts but {DB_FILE} is gone; "
                 "use another --work DIR")
        return cls(path, settings, data["parts"], float(data.get("elapsed_s") or 0.0),
                   data.get("model_fingerprint"), data.get("data_hash"))

    def part(self, key: str, label: str, compute: Callable[[], T]) -> T:
        """Part ``key`` of the run (``label`` in words): taken from the work folder if it
        finished there, else computed and recorded at once."""
        if key in self.parts:
            print(f"resumed: {label} from {self.path}", flush=True)
            return self.parts[key]
        self.working = True
        self.parts[key] = value = compute()
        self.save()
        return value

    def check_inputs(self, fingerprint: str, data_hash: str) -> None:
        """Refuse to resume a run on other weights (a model retrained under the same name) or
        other examples (a data folder or a task generator that changed): its finished parts
        would be figures of something else."""
        if self.fingerprint not in (None, fingerprint):
            fail(f"--work {self.path.parent} holds a run of other weights of this model "
                 f"(fingerprint {self.fingerprint}, now {fingerprint}): use another --work DIR")
        if self.data_hash not in (None, data_hash):
            fail(f"--work {self.path.parent} holds a run on other examples of this task "
                 f"(data hash {self.data_hash}, now {data_hash}): use another --work DIR")
        self.fingerprint, self.data_hash = fingerprint, data_hash

    def elapsed(self) -> float:
        """Wall seconds of the run over its segments (this one counts once it computes)."""
        return self.earlier_s + (time.perf_counter() - self.started if self.working else 0.0)

    def save(self) -> None:
        """Write progress.json atomically (nothing without a work folder)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"settings": self.settings, "model_fingerprint": self.fingerprint,
                "data_hash": self.data_hash, "elapsed_s": self.elapsed(), "parts": self.parts}
        write_text_atomically(self.path, json.dumps(data, indent=2) + "\n")


def summarise(points: list[dict], full: dict, oracle: dict) -> dict:
    """Figures of one study from its held-out front points."""
    accs = [p["accuracy"] for p in points]
    iso_points = [p for p in points if p["accuracy"] >= full["accuracy"] - ISO_TOLERANCE]
    iso = min(iso_points, key=lambda p: (p["mean_nfe"], p["seconds_per_example"] or 0.0),
              default=None)
    iso_nfe = iso["mean_nfe"] if iso else None
    iso_s = min((p["seconds_per_example"] for p in iso_points
                 if p["seconds_per_example"] is not None), default=None)
    return {
        "best_accuracy": max(accs) if accs else None,
        "iso_nfe": iso_nfe,
        "iso_nfe_fraction": iso_nfe / full["mean_nfe"] if iso_nfe else None,
        "oracle_multiple": iso_nfe / oracle["mean_nfe"] if iso_nfe else None,
        "iso_seconds_per_example": iso_s,
        "iso_seconds_fraction": (iso_s / full["seconds_per_example"]
                                 if iso_s and full.get("seconds_per_example") else None),
        "hypervolume": hypervolume([(p["accuracy"], p["mean_nfe"] / full["mean_nfe"]) for p in points]),
        "front": points,
    }


def study_runner(spec, name: str, storage: str, model) -> StudyRunner:
    """The runner of study ``name`` in ``storage``: `bench-<name>`, `-<cache>` after it under a
    block cache (a resumed run recreates it over the study its first segment ran)."""
    cache = spec.decoding.cache
    return StudyRunner(spec, storage=storage, model=model,
                       study_name=f"bench-{name}" + ("" if cache == "none" else f"-{cache}"))


def start_afresh(runner: StudyRunner) -> StudyRunner:
    """``runner`` with its study deleted from the storage if there: what an interrupted segment
    left of it (some trials) must not add to this run's."""
    with contextlib.suppress(KeyError):
        optuna.delete_study(study_name=runner.study_name, storage=runner.storage)
    return runner


def tune_strategy(runner: StudyRunner, name: str) -> tuple[list[dict], dict, dict]:
    """Tune one study (an arm, or `auto`) from its start, validate its front: (held-out front
    points, its best profile: the trial `tuner export --best` writes, with its held-out figures,
    and the tuning cost: wall seconds and model rows computed)."""
    start_afresh(runner)
    started = time.perf_counter()
    runner.optimize()
    cost = {"tune_wall_s": time.perf_counter() - started}
    held = validate(runner)
    study = runner.load()
    cost["forward_rows"] = sum(int(trial_metrics(t).get("forward_rows", 0)) for t in study.trials)
    points = []
    for t in front(study.trials) or front(study.trials, feasible_only=False):
        v = held[t.number]
        points.append({"trial": t.number, "strategy": t.user_attrs.get("arm", name),
                       "params": t.user_attrs["params"],
                       "tune_accuracy": trial_metrics(t)["accuracy"],
                       "tune_mean_nfe": trial_metrics(t)["mean_nfe"],
                       "accuracy": v["accuracy"], "mean_nfe": v["mean_nfe"],
                       "seconds_per_example": v.get("seconds_per_example")})
    try:
        best = best_trial(study)
    except UsageError:  # no feasible trial: the study has no profile to export
        return points, {}, cost
    v = held[best.number]
    profile = {"trial": best.number, "strategy": best.user_attrs.get("arm", name),
               "params": best.user_attrs["params"], "accuracy": v["accuracy"],
               "mean_nfe": v["mean_nfe"], "seconds_per_example": v.get("seconds_per_example")}
    return points, profile, cost


def study_figures(runner: StudyRunner, name: str, full: dict, oracle: dict) -> dict:
    """Study ``name`` tuned and validated: what the run reports of it."""
    spec = runner.spec
    print(f"tuning {name} ({spec.trials} trials, cache {spec.decoding.cache})...", flush=True)
    points, profile, cost = tune_strategy(runner, name)
    return {**summarise(points, full, oracle), "best_profile": profile, **cost}


def run_studies(spec, plan: Plan, cache: str, storage: str, model, full: dict, oracle: dict,
                progress: Progress) -> tuple[dict, dict[str, StudyRunner]]:
    """Every study of ``plan`` under block-cache mode ``cache``: name -> figures, and runners
    (those of studies taken from ``progress`` recreated over their stored studies)."""
    out, runners = {}, {}
    for name in plan.studies:
        runners[name] = study_runner(plan.spec_of(spec, name, cache), name, storage, model)
        out[name] = progress.part(f"study {name} cache {cache}", f"{name} (cache {cache})",
                                  functools.partial(study_figures, runners[name], name, full,
                                                    oracle))
    return out, runners


def best_single(results: dict, names: list[str], full: dict) -> str | None:
    """The single study whose best profile keeps full-step accuracy - 0.5 pt at the lowest NFE
    (any best profile when none does), among those EDIT can run on top of: a published rule
    (EDIT fixes its searched params; an extended arm's switches are not params EDIT passes on),
    not `ni` (its indicator belongs to the model it was trained on; EDIT decodes its own
    fine-tuned model)."""
    singles = [n for n in names if n not in (AUTO, "ni") and not n.endswith(EXTENDED)
               and results[n]["best_profile"]]
    iso = [n for n in singles
           if results[n]["best_profile"]["accuracy"] >= full["accuracy"] - ISO_TOLERANCE - 1e-12]
    return min(iso or singles, key=lambda n: results[n]["best_profile"]["mean_nfe"], default=None)


def edit_on_best(spec, folder: Path, map_sha256: str, base: dict, storage: str, full: dict,
                 oracle: dict, device: str) -> dict:
    """EDIT's stop tuned on top of profile ``base`` (its strategy and params fixed), decoding the
    fine-tuned model of ``folder`` (a `tuner finetune-edit` output) with its reasoning map."""
    strategy, _ = parse_arm(base["strategy"], spec.decoding)
    searched = sampler.STRATEGIES[strategy].search_space(spec.decoding)  # the rest: defaults
    fixed = {"map": str(folder / MAP_FILE), "map_sha256": map_sha256,  # as the settings hold it
             "base": strategy,
             **{f"base_params.{k}": v for k, v in base["params"].items() if k in searched}}
    edit_spec = dataclasses.replace(spec.with_overrides(strategy="edit", model=str(folder / "model")),
                                    search=fixed)
    model = sampler.load_model(str(folder / "model"), device=device)
    print(f"tuning edit on top of {base['strategy']} ({spec.trials} trials)...", flush=True)
    points, profile, cost = tune_strategy(study_runner(edit_spec, "edit", storage, model), "edit")
    return {**summarise(points, full, oracle), "best_profile": profile, **cost,
            "on_top_of": {"strategy": base["strategy"], "params": base["params"]},
            "model": str(folder / "model")}


def targets(results: dict, names: list[str]) -> list[dict]:
    """Issue 12's targets on the held-out split, each with the measured figures and pass / miss."""
    full, oracle = results["full_step"], results["oracle"]
    singles = [n for n in names if n != AUTO and results[n]["best_profile"]]
    best_one = min(singles, key=lambda n: results[n]["best_profile"]["mean_nfe"], default=None)
    auto = results.get(AUTO, {}).get("best_profile") or {}
    out = []
    if auto and best_one:
        ref = results[best_one]["best_profile"]["mean_nfe"]
        out.append({"target": f"auto's best profile: accuracy >= full-step - 0.5 pt at NFE <= "
                              f"{AUTO_NFE_MARGIN} x the best single study's ({best_one})",
                    "measured": f"{auto['accuracy']:.1%} at {auto['mean_nfe']:.2f} NFE vs "
                                f"{ref:.2f} (x{auto['mean_nfe'] / ref:.3f})",
                    "pass": auto["accuracy"] >= full["accuracy"] - ISO_TOLERANCE - 1e-12
                    and auto["mean_nfe"] <= AUTO_NFE_MARGIN * ref})
    ext, thr = results.get("less+ext", {}).get("iso_nfe"), results.get("threshold", {}).get("iso_nfe")
    if "less+ext" in results and "threshold" in results:
        out.append({"target": "extended LESS's iso-accuracy NFE <= the tuned threshold's",
                    "measured": f"{'-' if ext is None else format(ext, '.3f')} vs "
                                f"{'-' if thr is None else format(thr, '.3f')}",
                    "pass": ext is not None and (thr is None or ext <= thr)})
    profiles = [results[n]["best_profile"] for n in names if results[n]["best_profile"]]
    if profiles:
        best = min((p for p in profiles
                    if p["accuracy"] >= full["accuracy"] - ISO_TOLERANCE - 1e-12),
                   key=lambda p: p["mean_nfe"], default=None)
        out.append({"target": f"the best profile within {ORACLE_MULTIPLE}x the oracle's NFE",
                    "measured": f"{best['strategy']} {best['mean_nfe']:.2f} NFE = "
                                f"{best['mean_nfe'] / oracle['mean_nfe']:.2f}x the oracle's "
                                f"{oracle['mean_nfe']:.2f}" if best else
                                "no profile keeps full-step accuracy - 0.5 pt",
                    "pass": bool(best) and best["mean_nfe"] <= ORACLE_MULTIPLE * oracle["mean_nfe"]})
    return out


def sampler_curves(spec, plan: Plan, storage: str, model, name: str, done: StudyRunner,
                   progress: Progress) -> dict[str, list[float]]:
    """Hypervolume of the tuning-split front after each trial, per Optuna sampler, on study
    ``name``'s space (the spec's own sampler's study is ``done``, already run); each curve a
    part of the run."""
    return {sampler_name: progress.part(
                f"tuners {sampler_name}", f"the {sampler_name} sampler's curve on {name}",
                functools.partial(sampler_curve, spec, plan, storage, model, name, done,
                                  sampler_name))
            for sampler_name in ("tpe", "gp", "random")}


def sampler_curve(spec, plan: Plan, storage: str, model, name: str, done: StudyRunner,
                  sampler_name: str) -> list[float]:
    """Hypervolume of the tuning-split front after each trial of study ``name`` run with Optuna
    sampler ``sampler_name`` (the spec's own: ``done``, already run)."""
    if sampler_name == spec.sampler:
        runner, study = done, done.load()
    else:
        print(f"tuning {name} with the {sampler_name} sampler...", flush=True)
        runner = start_afresh(StudyRunner(
            plan.spec_of(spec, name, "none").with_overrides(sampler=sampler_name),
            storage=storage, study_name=f"bench-sampler-{sampler_name}", model=model))
        study = runner.optimize()
    base = runner.baseline("tune")  # stored in the storage by the study's first run
    curve = []
    for n in range(1, len(study.trials) + 1):
        pts = [(trial_metrics(t)["accuracy"], trial_metrics(t)["mean_nfe"] / base.mean_nfe)
               for t in front(study.trials[:n])]
        curve.append(hypervolume(pts))
    return curve


def reuse_savings(spec, plan: Plan, storage: str, model, name: str, results: dict) -> dict:
    """Tuning cost of study ``name`` as `tuner optimize` runs it (reuse + racing, measured in the
    main run) against the same study with both off: model rows computed and wall seconds."""
    print(f"tuning {name} again with reuse + racing off...", flush=True)
    started = time.perf_counter()
    off = start_afresh(StudyRunner(plan.spec_of(spec, name, "none"), storage=storage,
                                   study_name=f"bench-{name}-plain", model=model,
                                   reuse=False, racing=False)).optimize()
    return {"study": name, "on": results[name]["forward_rows"],
            "off": sum(int(trial_metrics(t).get("forward_rows", 0)) for t in off.trials),
            "wall_on_s": results[name]["tune_wall_s"], "wall_off_s": time.perf_counter() - started}


def reference_runs(runner: StudyRunner, spec) -> tuple[dict, dict]:
    """Full-step decoding and the oracle on the held-out split, each timed by a plain decode."""
    base = runner.baseline("test")
    settings = runner.baseline_settings
    evaluator = runner.evaluation.evaluator("test", reuse=False)
    full_run = evaluator.run(sampler.strategies.Fixed.full_step(settings), settings=settings,
                             keep_tokens=True)
    oracle_run = evaluator.run(sampler.make_strategy("oracle"), settings=settings,
                               reference=full_run.tokens)
    full = {"accuracy": base.accuracy, "mean_nfe": base.mean_nfe,
            "seconds_per_example": full_run.seconds_per_example}
    oracle = {"accuracy": oracle_run.accuracy, "mean_nfe": oracle_run.mean_nfe,
              "seconds_per_example": oracle_run.seconds_per_example}
    return full, oracle


def references(runner: StudyRunner, spec) -> dict:
    """The reference runs as a part of the run: {"full": full-step's figures, "oracle": ...}."""
    print("full-step and the oracle on the held-out split...", flush=True)
    full, oracle = reference_runs(runner, spec)
    return {"full": full, "oracle": oracle}


def _front_axes(ax, results: dict, names: list[str], key: str) -> None:
    """Each study's held-out front on ``ax``: accuracy against ``key`` (mean_nfe or
    seconds_per_example), full-step and the oracle marked."""
    full, oracle = results["full_step"], results["oracle"]
    for name in names:
        pts = sorted((p[key], p["accuracy"]) for p in results[name]["front"] if p.get(key))
        if pts:
            ax.plot([x for x, _ in pts], [100 * y for _, y in pts], marker="o", ms=3, label=name,
                    lw=2.5 if name == AUTO else 1.2, ls="--" if name == AUTO else "-")
    for ref, marker, size, colour, label in ((full, "*", 200, "k", "full-step"),
                                             (oracle, "X", 120, "red", "oracle (lower bound)")):
        if ref.get(key):
            ax.scatter([ref[key]], [100 * ref["accuracy"]], marker=marker, s=size, c=colour,
                       label=label, zorder=5)
    ax.axhline(100 * (full["accuracy"] - ISO_TOLERANCE), color="grey", ls=":", lw=1,
               label="full-step - 0.5 pt")
    _log_x(ax)
    ax.set_ylabel("held-out accuracy (%)")
    ax.grid(alpha=0.3)


def _log_x(ax) -> None:
    import matplotlib.ticker

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))


def plot(results: dict, curves: dict, out: Path, names: list[str], meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task, model = meta["task"], meta["model"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    _front_axes(left, results, names, "mean_nfe")
    left.set_xlabel("mean NFE (forward passes per problem, log scale)")
    _front_axes(right, results, names, "seconds_per_example")
    right.set_xlabel(f"seconds per example (batch {meta['batch_size']}, {meta['machine']}, log)")
    left.legend(fontsize=8)
    fig.suptitle(f"{task} / {model}: tuned fronts on the held-out split")
    fig.tight_layout()
    fig.savefig(out / f"{task}.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, label=name)
    ax.set_xlabel("trials")
    ax.set_ylabel("hypervolume of the tuning front")
    ax.set_title(f"{meta['tuners_study']}: Optuna samplers at the same budget")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / ("tuners.png" if task == "arith" else f"{task}-tuners.png"), dpi=120)
    plt.close(fig)

    by_cache = results.get("by_cache") or {}
    if len(by_cache) > 1:
        fig, axes = plt.subplots(1, len(by_cache), figsize=(5.5 * len(by_cache), 4.5), sharey=True)
        for ax, (cache, figures) in zip(axes, by_cache.items()):
            _front_axes(ax, {**figures, "full_step": results["full_step"],
                             "oracle": results["oracle"]}, names, "seconds_per_example")
            ax.set_title(f"cache {cache}")
            ax.set_xlabel("seconds per example (log)")
        axes[0].legend(fontsize=7)
        fig.suptitle(f"{task} / {model}: held-out fronts per block-cache mode")
        fig.tight_layout()
        fig.savefig(out / f"{task}-cache.png", dpi=120)
        plt.close(fig)


def _f(x, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def study_table(figures: dict, names: list[str]) -> list[str]:
    """One row per study: accuracy, iso-accuracy NFE and seconds, hypervolume, best profile,
    tuning cost."""
    lines = ["| study | best held-out accuracy | iso-accuracy NFE | fraction of full-step | "
             "multiple of oracle | iso-accuracy s/example (fraction of full-step) | hypervolume "
             "| best profile (export --best): accuracy, NFE | tuning wall time |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        r = figures[name]
        bp = r.get("best_profile") or {}
        best = (f"{bp['accuracy']:.1%}, {bp['mean_nfe']:.2f}"
                + (f" ({bp['strategy']})" if name == AUTO else "")) if bp else "-"
        seconds = (f"{r['iso_seconds_per_example'] * 1000:.1f} ms "
                   f"({_f(r['iso_seconds_fraction'], '.3f')})"
                   if r.get("iso_seconds_per_example") else "-")
        lines.append(f"| {name} | {_f(r['best_accuracy'], '.1%')} | {_f(r['iso_nfe'], '.2f')} | "
                     f"{_f(r['iso_nfe_fraction'], '.3f')} | {_f(r['oracle_multiple'], '.2f')} | "
                     f"{seconds} | {r['hypervolume']:.4f} | {best} | "
                     f"{_f(r.get('tune_wall_s'), '.0f')} s |")
    return lines


def markdown(results: dict, meta: dict, names: list[str]) -> str:
    full, oracle = results["full_step"], results["oracle"]
    curves, savings = results["tuners"], results["reuse"]
    floor = ("full-step - %g pt" % meta["tolerance"]) if meta["tolerance"] is not None else "spec"
    lines = [
        f"Command: `{meta['command']}`; {meta['date']}; {meta['machine']}; "
        f"task {meta['task']}, model {meta['model']}; "
        f"{meta['trials']} trials per study (accuracy floor {floor}), {meta['n_tune']} tuning / "
        f"{meta['n_test']} held-out problems, batch {meta['batch_size']}; "
        f"wall time {meta['wall_s'] / 60:.1f} min.",
        "",
        f"Full-step: accuracy {full['accuracy']:.1%}, mean NFE {full['mean_nfe']:.2f}, "
        f"{full['seconds_per_example'] * 1000:.1f} ms / example. "
        f"Oracle: accuracy {oracle['accuracy']:.1%}, mean NFE {oracle['mean_nfe']:.2f}, "
        f"{oracle['seconds_per_example'] * 1000:.1f} ms / example.",
        "",
    ]
    by_cache = results.get("by_cache") or {meta["caches"][0]: results}
    for cache, figures in by_cache.items():
        if len(by_cache) > 1:
            lines += [f"Block cache `{cache}`:", ""]
        lines += [*study_table(figures, names), ""]
    if "edit" in results:
        e = results["edit"]
        lines += [f"EDIT on top of `{e['on_top_of']['strategy']}`'s best profile "
                  f"(fine-tuned model {e['model']}):", "", *study_table({"edit": e}, ["edit"]), ""]
    lines += [
        "Iso-accuracy NFE: the lowest held-out mean NFE among front points with held-out accuracy "
        ">= full-step accuracy - 0.5 point (s/example: the fastest such point, a plain timed "
        "decode). Hypervolume: reference point (accuracy 0, NFE fraction 1). Tuning wall time: "
        "the study's trials with reuse + racing, held-out validation not included.",
        "",
        f"| Optuna sampler on `{meta['tuners_study']}` | hypervolume after 1/3 of the trials | "
        "after all trials |",
        "|---|---|---|",
    ]
    for name, curve in curves.items():
        third = curve[max(0, len(curve) // 3 - 1)] if curve else 0.0
        lines.append(f"| {name} | {third:.4f} | {curve[-1] if curve else 0.0:.4f} |")
    lines += ["", "| target (issue 12) | measured | |", "|---|---|---|"]
    lines += [f"| {t['target']} | {t['measured']} | {'pass' if t['pass'] else 'MISS'} |"
              for t in results.get("targets", [])]
    lines += [
        "",
        f"Tuning cost of the `{savings['study']}` study: {savings['on']:,} model rows and "
        f"{savings['wall_on_s']:.0f} s with reuse + racing, {savings['off']:,} rows and "
        f"{savings['wall_off_s']:.0f} s with both off (rows {savings['on'] / savings['off']:.3f}, "
        f"wall time {savings['wall_on_s'] / savings['wall_off_s']:.3f}).",
    ]
    return "\n".join(lines) + "\n"


def fail(message: str) -> NoReturn:
    """A user's mistake: one line on stderr, exit status 2, nothing written."""
    print(f"frontier.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="A long run (e.g. python bench/frontier.py --task cot --work runs/frontier-cot) "
               "keeps each finished part in --work DIR: after Ctrl-C, SIGTERM or a crash, run "
               "the same command again and it resumes; other flags in the same DIR are refused.")
    ap.add_argument("--quick", action="store_true", help="6 trials, 60 tuning / 100 held-out problems")
    ap.add_argument("--task", default="arith", help="a bundled task: arith (default) or cot")
    ap.add_argument("--model", default=None,
                    help="a model name or folder instead of the task's (e.g. "
                         "GSAI-ML/LLaDA-8B-Instruct with --task gsm8k on a GPU)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda, ...")
    ap.add_argument("--studies", default=None,
                    help="comma-separated studies to run (default: every arm, then auto)")
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--n-tune", type=int, default=None, help="tuning problems (default: spec)")
    ap.add_argument("--n-test", type=int, default=None, help="held-out problems (default: spec)")
    ap.add_argument("--tolerance", type=float, default=100 * ISO_TOLERANCE,
                    help="the studies' accuracy floor, points under full-step (default 0.5: the "
                         "iso-accuracy line the figures are read at)")
    ap.add_argument("--cache", default="none",
                    help="comma-separated block-cache modes, each a full run of the studies: "
                         "none, prefix, dual (native LLaDA / Dream models)")
    ap.add_argument("--indicator", default=None,
                    help="NI's trained indicator file (default: the bundled model's, if any): "
                         "adds the `ni` study")
    ap.add_argument("--edit", type=Path, default=None,
                    help="a `tuner finetune-edit` output folder: tunes EDIT on top of the best "
                         "single study's profile")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--work", type=Path, default=None, metavar="DIR",
                    help="a folder keeping the run's Optuna storage and progress.json, so that "
                         "an interrupted run (Ctrl-C, SIGTERM) resumes where it stopped: run the "
                         "same command again (default: a temporary folder, nothing kept)")
    args = ap.parse_args(argv)
    caches = args.cache.split(",")
    bad = [c for c in caches if c not in CACHES]
    if bad or len(set(caches)) != len(caches):
        fail(f"--cache takes distinct modes of {', '.join(CACHES)}, got {args.cache!r}")
    if args.indicator and not Path(args.indicator).is_file():
        fail(f"--indicator {args.indicator}: no such file (train one with `tuner "
                 "train-indicator`)")
    if args.edit and not ((args.edit / MAP_FILE).is_file() and (args.edit / "model").is_dir()):
        fail(f"--edit {args.edit}: not a `tuner finetune-edit` output (it needs {MAP_FILE} "
                 "and model/)")
    args.caches = caches
    return args


def configure(args: argparse.Namespace) -> tuple[Any, Plan]:
    """The run the flags ask for: its spec and plan (nothing loaded, nothing written)."""
    trials = args.trials or (6 if args.quick else 30)
    sizes = {"n_tune": 60, "n_test": 100} if args.quick else {}
    sizes.update({k: v for k, v in (("n_tune", args.n_tune), ("n_test", args.n_test)) if v})
    try:
        spec = load_spec(args.task).with_overrides(trials=trials, tolerance=args.tolerance,
                                                   model=args.model, **sizes)
    except UsageError as err:
        fail(str(err))
    indicator = args.indicator or bundled_indicator(spec.model)
    names = args.studies.split(",") if args.studies else studies(spec, indicator)
    if "ni" in names and not indicator:
        fail("the `ni` study needs a trained indicator: give --indicator FILE")
    return spec, Plan(studies=names, caches=args.caches, indicator=indicator, edit=args.edit)


def run_settings(args: argparse.Namespace, spec, plan: Plan) -> dict:
    """What changes a run's figures, as progress.json records it: the spec (task, model, trials,
    split sizes, tolerance, ...), the device, studies, cache modes and trained files (not
    ``--out``)."""
    spec_dict = {k: v for k, v in spec.to_dict().items() if k not in ("strategy", "strategies")}
    indicator = plan.indicator if "ni" in plan.studies else None  # ni's (and auto's beside it)
    return {**spec_dict, "device": args.device, "studies": plan.studies, "caches": plan.caches,
            "indicator": str(Path(indicator).resolve()) if indicator else None,
            "indicator_sha256": plan.indicator_sha256 if indicator else None,
            "edit": str(plan.edit.resolve()) if plan.edit else None,
            "edit_map_sha256": plan.edit_sha256 if plan.edit else None}


def load_checked_model(spec, plan: Plan, device: str):
    """The run's model, refused in one line if it cannot decode the plan's cache modes."""
    try:
        model = sampler.load_model(spec.model, device=device)
    except sampler.SamplerError as err:
        fail(str(err))
    if set(plan.caches) - {"none"} and not model.supports_cache:
        fail(f"model {spec.model!r} has no block KV cache: run --cache none "
             "(prefix / dual need a native LLaDA or Dream model, e.g. --task cot)")
    return model


@contextlib.contextmanager
def storage_folder(work: Path | None) -> Iterator[Path]:
    """The folder of the run's Optuna storage: ``work`` (kept), or a temporary one."""
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
        yield work.resolve()
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def tuners_study_of(names: list[str]) -> str:
    """The study the Optuna samplers are compared on: `auto` if the run has it."""
    return AUTO if AUTO in names else names[0]


def run(args: argparse.Namespace, spec, plan: Plan, progress: Progress) -> tuple[dict, Any]:
    """Every part of the run, each taken from ``progress`` if it finished in an earlier segment:
    (the results, the model)."""
    names, tuners_study = plan.studies, tuners_study_of(plan.studies)
    model = load_checked_model(spec, plan, args.device)
    results: dict = {}
    with storage_folder(args.work) as folder:
        storage = f"sqlite:///{folder / DB_FILE}"
        reference = StudyRunner(plan.spec_of(spec, names[0], "none"), storage=storage,
                                study_name="bench-reference", model=model)
        if args.work is not None:
            ev = reference.evaluation
            progress.check_inputs(ev.model_fingerprint,
                                  hash_examples([*ev.examples("tune"), *ev.examples("test")]))
        refs = progress.part("reference", "full-step and the oracle",
                             functools.partial(references, reference, spec))
        full, oracle = refs["full"], refs["oracle"]
        by_cache, runners = {}, {}
        for cache in plan.caches:
            by_cache[cache], runs = run_studies(spec, plan, cache, storage, model, full, oracle,
                                                progress)
            runners.setdefault(cache, runs)
        first = by_cache[plan.caches[0]]
        results.update(first)  # today's keys: the first cache mode's studies at the top level
        results["full_step"], results["oracle"] = full, oracle
        if len(plan.caches) > 1:
            results["by_cache"] = by_cache
        results["targets"] = targets(results, names)
        if plan.edit:
            base = best_single(results, names, full)
            if base is None:
                fail("no single study has a best profile to put EDIT on top of")
            results["edit"] = progress.part(
                "edit", f"EDIT on top of {base}", functools.partial(
                    edit_on_best, spec, plan.edit, plan.edit_sha256,
                    results[base]["best_profile"], storage, full, oracle, args.device))
        first_runners = runners[plan.caches[0]]
        print(f"comparing Optuna samplers on {tuners_study}...", flush=True)
        results["tuners"] = sampler_curves(spec, plan, storage, model, tuners_study,
                                           first_runners[tuners_study], progress)
        results["reuse"] = progress.part(
            "reuse", f"{tuners_study} with reuse + racing off",
            functools.partial(reuse_savings, spec, plan, storage, model, tuners_study, first))
    return results, model


def run_meta(argv: list[str] | None, spec, plan: Plan, model, wall: float) -> dict:
    """How the run was made: the command, date, machine, budget and wall time."""
    command = " ".join(["python bench/frontier.py", *(argv if argv is not None else sys.argv[1:])])
    return {
        "command": command, "date": datetime.date.today().isoformat(),
        "machine": (torch.cuda.get_device_name(model.device) if model.device.type == "cuda"
                    else f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads"),
        "trials": spec.trials, "n_tune": spec.n_tune, "n_test": spec.n_test, "wall_s": wall,
        "batch_size": spec.batch_size, "tolerance": spec.tolerance, "caches": plan.caches,
        "task": spec.task, "model": spec.model, "studies": plan.studies,
        "tuners_study": tuners_study_of(plan.studies),
        "indicator": plan.indicator, "edit": str(plan.edit) if plan.edit else None}


def write_outputs(results: dict, out: Path, spec, names: list[str]) -> None:
    """<task>.json, <task>.md and the plots in ``out``; the tables on stdout."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{spec.task}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results, results["meta"], names)
    (out / f"{spec.task}.md").write_text(text)
    plot(results, results["tuners"], out, names, results["meta"])
    print(text)


def _interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does (in the main thread only; the previous
    handler is put back afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _NoInterruptTraceback(logging.Filter):
    """Keeps Optuna's line about a trial failed by KeyboardInterrupt, drops its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is KeyboardInterrupt:
            record.exc_info, record.exc_text = None, None
        return True


@contextlib.contextmanager
def quiet_interrupted_trials() -> Iterator[None]:
    """An interrupted run ends in one line, not with the traceback Optuna logs for the trial it
    cut off (through the handlers of Optuna's logger)."""
    handlers, quiet = list(logging.getLogger("optuna").handlers), _NoInterruptTraceback()
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


def interrupted(progress: Progress, work: Path | None) -> NoReturn:
    """A run stopped by Ctrl-C or SIGTERM: its wall time so far recorded (its finished parts
    already are), one line on stderr, exit status 130."""
    if progress.working:
        progress.save()
    print("frontier.py: interrupted; " + (f"rerun the same command to resume from {work}"
                                           if work is not None else
                                           "nothing kept (give --work DIR to make a run "
                                           "resumable)"), file=sys.stderr)
    raise SystemExit(INTERRUPTED)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spec, plan = configure(args)
    progress = Progress.open(args.work, run_settings(args, spec, plan))
    with sigterm_as_interrupt(), quiet_interrupted_trials():
        try:
            results, model = run(args, spec, plan, progress)
            results["meta"] = run_meta(argv, spec, plan, model, progress.elapsed())
            write_outputs(results, args.out, spec, plan.studies)
        except KeyboardInterrupt:
            interrupted(progress, args.work)


if __name__ == "__main__":
    main()
