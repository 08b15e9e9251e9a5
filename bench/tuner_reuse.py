"""Forward passes a study needs with forward-pass reuse + racing, against the same study with both off.

Runs the same study spec twice in one process, each in its own temporary SQLite database: once as
`tuner optimize` runs it by default (exact reuse of forward passes across trials, racing against
the accuracy floor), once with both off. Counts the rows the model really computed (one row = one
sequence through one forward pass), including the full-step baseline, and the wall time of each.

    python bench/tuner_reuse.py                  # arith, 30 trials, the spec's split sizes
    python bench/tuner_reuse.py --trials 10 --n-tune 100
    python bench/tuner_reuse.py --n-tune 100 --bounded 0.1,0.02
        # also: the cache bounded to 10% and 2% of what the study fills, each eviction policy

With ``--bounded F,...`` the study runs again (reuse + racing) with the cache bounded to each
fraction F of the bytes the unbounded cache held at the end, once per eviction policy of
:data:`tuner.cache.POLICIES`: how much of reuse's saving a cache too small for the study keeps
(the regime of a large model, whose rows are G x V logits: 65 MB at LLaDA-8B's 256 x 126,464 in
bfloat16).
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
from tuner.cache import POLICIES, LogitsCache
from tuner.study import trial_metrics


def run(spec, storage: str, *, reuse: bool, racing: bool, label: str, model=None,
        cache: LogitsCache | None = None) -> dict:
    """One study of ``spec`` in ``storage``; bars on stderr count the baseline's examples and
    the trials (the figures are the same with or without them). ``cache``: the reuse cache to
    use instead of the default one."""
    runner = StudyRunner(spec, storage=storage, study_name="bench", reuse=reuse, racing=racing,
                         model=model)
    if cache is not None:
        runner.evaluation.cache = cache  # before the first evaluator is made
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
            "model": model, "cache": runner.evaluation.cache}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="arith")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--n-tune", type=int, default=None)
    ap.add_argument("--bounded", type=_fractions, default=(),
                    help="comma-separated fractions in (0, 1) of the study's cache bytes: rerun "
                         "with the cache bounded to each, once per eviction policy")
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
    if args.bounded:
        bounded(spec, args.bounded, on, off)


def bounded(spec, fractions: tuple[float, ...], on: dict, off: dict) -> None:
    """The study again with the reuse cache bounded to each fraction of what ``on`` held, per
    eviction policy; rows as a fraction of ``off``'s (no reuse, no racing) and of ``on``'s."""
    held = on["cache"].bytes
    print(f"\nbounded cache (the unbounded one held {held / 2**20:.1f} MiB, "
          f"{len(on['cache']):,} rows at the end):")
    print("| cache bound | policy | model rows | of neither's | of unbounded's | wall time |")
    print("|---|---|---|---|---|---|")
    for fraction in fractions:
        for policy in POLICIES:
            with tempfile.TemporaryDirectory() as tmp:
                r = run(spec, f"sqlite:///{Path(tmp) / 'b.db'}", reuse=True, racing=True,
                        label=f"{fraction:.0%} {policy}", model=on["model"],
                        cache=LogitsCache(max(1, int(held * fraction)), policy))
            print(f"| {fraction:.0%} | {policy} | {r['rows']:,} | {r['rows'] / off['rows']:.3f} "
                  f"| {r['rows'] / on['rows']:.2f} | {r['wall_s']:.1f} s |", flush=True)


def _fractions(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or not all(0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected fractions in (0, 1) like 0.1,0.02, got {text!r}")
    return values


if __name__ == "__main__":
    main()
