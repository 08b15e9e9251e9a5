"""Forward passes a study needs with forward-pass reuse + racing, against the same study with both off.

Runs the same study spec twice in one process, each in its own temporary SQLite database: once as
`tuner optimize` runs it by default (exact reuse of forward passes across trials, racing against
the accuracy floor), once with both off. Counts the rows the model really computed (one row = one
sequence through one forward pass), including the full-step baseline, and the wall time of each.

    python bench/tuner_reuse.py                  # arith, 30 trials, the spec's split sizes
    python bench/tuner_reuse.py --trials 10 --n-tune 100
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tuner import StudyRunner, load_spec
from tuner.study import trial_metrics


def run(spec, storage: str, *, reuse: bool, racing: bool, label: str, model=None) -> dict:
    """One study of ``spec`` in ``storage``; bars on stderr count the baseline's examples and
    the trials (the figures are the same with or without them)."""
    runner = StudyRunner(spec, storage=storage, study_name="bench", reuse=reuse, racing=racing,
                         model=model)
    console = Console(stderr=True)
    with console.status(f"{label}: loading model {runner.evaluation.model_name} ..."):
        model = runner.evaluation.model
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        baseline = progress.add_task(f"{label}: full-step baseline (examples)",
                                     total=len(runner.evaluation.examples("tune")))
        trial_bar = progress.add_task(f"{label}: trials", total=spec.trials, start=False)

        def on_baseline(done: int, total: int) -> None:
            progress.update(baseline, completed=done, total=total)

        started = time.perf_counter()
        base = runner.baseline("tune", progress=on_baseline)
        baseline_rows = (runner.evaluation.cache.misses if runner.evaluation.cache is not None
                         else round(base.mean_nfe * base.n))
        progress.start_task(trial_bar)
        study = runner.optimize(on_trial=lambda study, trial: progress.advance(trial_bar))
    wall = time.perf_counter() - started
    trials = [trial_metrics(t) for t in study.trials]
    rows = baseline_rows + sum(int(m.get("forward_rows", 0)) for m in trials)
    feasible = [m for m in trials if m.get("feasible") and m.get("complete")]
    best = max(feasible, key=lambda m: m["quality_per_step"]) if feasible else None
    return {"rows": rows, "wall_s": wall, "best": best, "raced": sum(not m.get("complete") for m in trials),
            "model": model}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="arith")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--n-tune", type=int, default=None)
    args = ap.parse_args()
    spec = load_spec(args.task).with_overrides(trials=args.trials, n_tune=args.n_tune)
    print(f"task {spec.task}, model {spec.model}, strategy {spec.strategy}, {spec.trials} trials, "
          f"{spec.n_tune} tuning examples, objective {spec.objective}, torch threads "
          f"{torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        on = run(spec, f"sqlite:///{Path(tmp) / 'on.db'}", reuse=True, racing=True,
                 label="reuse + racing")
        off = run(spec, f"sqlite:///{Path(tmp) / 'off.db'}", reuse=False, racing=False,
                  label="neither", model=on["model"])
    for label, r in (("reuse + racing", on), ("neither", off)):
        b = r["best"]
        best = (f"best feasible: accuracy {b['accuracy']:.1%}, mean NFE {b['mean_nfe']:.2f}, "
                f"{b['speedup']:.2f}x" if b else "no feasible trial")
        print(f"{label:>15}: {r['rows']:>8,} model rows computed, {r['wall_s']:7.1f} s, "
              f"{r['raced']} trials raced out; {best}")
    print(f"ratio (reuse + racing / neither): {on['rows'] / off['rows']:.3f} of the forward passes, "
          f"{on['wall_s'] / off['wall_s']:.3f} of the wall time")


if __name__ == "__main__":
    main()
