"""Evaluate a bundled model on its task's held-out set through the sampler: the model card's table.

``arith`` (tiny-arith): full-step; fixed at gen_length / 2, / 4, / 8; the Fast-dLLM threshold at
0.5, 0.7, 0.9; the oracle. ``cot`` (tiny-cot; gen 128 in 4 blocks of 32): full-step; the oracle;
fixed 64 / 32 / 16 / 8 steps; threshold 0.99 / 0.95 / 0.9 / 0.7; factor 0.5 / 2; LESS
(tau_conf, window, js_delta) (0.9, 3, 1e-3) / (0.9, 1, 1e-3) / (0.7, 1, 1e-3); KLASS (tau, kappa,
history) (0.9, 1e-3, 1); and threshold 0.9 under the block KV cache none / prefix / dual. For
each: the accuracy through the task's validator, per kind, the mean number of forward passes (NFE)
per problem and, for cot, the wall time per problem. The oracle's reference is the full-step output.
Decoding is greedy, with EOS fill (everything after a committed end-of-text is filled at once).

    python -m sampler.zoo.evaluate                      # tiny-arith, the 600 held-out problems
    python -m sampler.zoo.evaluate --model tiny-cot     # the cot table (use a GPU: --device cuda)
    python -m sampler.zoo.evaluate --task cot --model FOLDER --n 500 --json out.json
    python -m sampler.zoo.evaluate --task cot --model FOLDER --n 100 --row "threshold 0.9"
        # some rows only (full-step always runs first): a quick look at a checkpoint in training
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from types import ModuleType

import torch

from ..errors import SamplerError
from ..models import DiffusionModel, load_model
from ..settings import DecodingSettings
from ..strategies import make_strategy
from . import arith, cot
from .decode import decode
from .problems import Problem

__all__ = ["SETTINGS", "COT_SETTINGS", "TASKS", "Setting", "Row", "evaluate", "markdown",
           "select", "targets", "main"]


@dataclass(frozen=True)
class Setting:
    """One row of the table: a label, a strategy with its params, and the block cache mode."""

    label: str
    strategy: str
    params: dict
    cache: str = "none"


def _fixed(steps: int) -> dict:
    return {"steps": steps, "score": "low_confidence"}


G = arith.GEN_LENGTH
SETTINGS: tuple[Setting, ...] = (
    Setting("full-step", "fixed", _fixed(G)),
    Setting(f"fixed {G // 2} steps (G/2)", "fixed", _fixed(G // 2)),
    Setting(f"fixed {G // 4} steps (G/4)", "fixed", _fixed(G // 4)),
    Setting(f"fixed {G // 8} steps (G/8)", "fixed", _fixed(G // 8)),
    Setting("threshold 0.5", "threshold", {"threshold": 0.5}),
    Setting("threshold 0.7", "threshold", {"threshold": 0.7}),
    Setting("threshold 0.9", "threshold", {"threshold": 0.9}),
    Setting("oracle", "oracle", {}),
)
"""The ``arith`` rows; full-step must come first (it is the oracle's reference)."""

C = cot.GEN_LENGTH
COT_SETTINGS: tuple[Setting, ...] = (
    Setting("full-step", "fixed", _fixed(C)),
    Setting("oracle", "oracle", {}),
    *(Setting(f"fixed {s} steps", "fixed", _fixed(s)) for s in (C // 2, C // 4, C // 8, C // 16)),
    *(Setting(f"threshold {t}", "threshold", {"threshold": t}) for t in (0.99, 0.95, 0.9, 0.7)),
    *(Setting(f"factor {f:g}", "factor", {"factor": f}) for f in (0.5, 2.0)),
    *(Setting(f"less ({tau}, {w}, 1e-3)", "less",
              {"tau_conf": tau, "window": w, "js_delta": 1e-3})
      for tau, w in ((0.9, 3), (0.9, 1), (0.7, 1))),
    Setting("less, the authors' defaults (0.75, 3, 0.04)", "less", {}),
    Setting("klass (0.9, 1e-3, 1)", "klass", {"tau": 0.9, "kappa": 1e-3, "history": 1}),
    *(Setting(f"threshold 0.9, cache {mode}", "threshold", {"threshold": 0.9}, cache=mode)
      for mode in ("none", "prefix", "dual")),
)
"""The ``cot`` rows (the issue's table, then the block cache at threshold 0.9); full-step first."""


@dataclass(frozen=True)
class EvalTask:
    """What evaluating one bundled task needs."""

    module: ModuleType
    default_model: str
    settings: tuple[Setting, ...]
    timed: bool
    """Whether the table shows wall time per problem (the cache rows are about speed)."""


TASKS: dict[str, EvalTask] = {
    "arith": EvalTask(arith, "tiny-arith", SETTINGS, timed=False),
    "cot": EvalTask(cot, "tiny-cot", COT_SETTINGS, timed=True),
}
MODEL_TASKS = {task.default_model: name for name, task in TASKS.items()}
"""Bundled model name -> its task (what ``--model`` alone selects)."""
HELD_OUT = 600
"""Held-out problems per task (seed 0): every figure of a model card comes from these."""


@dataclass
class Row:
    label: str
    accuracy: float
    mean_nfe: float
    by_kind: dict[str, float] = field(default_factory=dict)
    seconds_per_problem: float = 0.0


def _decode(model: DiffusionModel, problems: list[Problem], task: EvalTask, setting: Setting,
            eos_fill: bool, reference: torch.Tensor | None
            ) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    settings = DecodingSettings(gen_length=task.module.GEN_LENGTH,
                                block_length=task.module.BLOCK_LENGTH, eos_fill=eos_fill,
                                cache=setting.cache)
    out = decode(model, problems, make_strategy(setting.strategy, setting.params), settings,
                 reference=reference)
    return out.texts, out.generated, out.nfe


def _synchronize(model: DiffusionModel) -> None:
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)


def evaluate(model: DiffusionModel, problems: list[Problem], *, task: str = "arith",
             settings: tuple[Setting, ...] | None = None, batch_size: int = 200,
             eos_fill: bool = True, progress: bool = True) -> list[Row]:
    """One :class:`Row` per setting (default: the task's table) on ``problems``; the first
    setting must be full-step (the oracle's reference)."""
    spec = TASKS[task]
    settings = spec.settings if settings is None else settings
    kinds = spec.module.KINDS
    rows: list[Row] = []
    references: list[torch.Tensor] = []
    done: dict[str, Row] = {}  # a setting listed twice (threshold 0.9 = its cache-none row) runs once
    for setting in settings:
        key = json.dumps([setting.strategy, setting.params, setting.cache], sort_keys=True)
        if key in done:
            rows.append(replace(done[key], label=setting.label))
            continue
        _synchronize(model)
        started = time.perf_counter()
        right: dict[str, list[float]] = {k: [] for k in kinds}
        nfe: list[torch.Tensor] = []
        for i, start in enumerate(range(0, len(problems), batch_size)):
            chunk = problems[start:start + batch_size]
            ref = references[i] if setting.strategy == "oracle" else None
            texts, gen, n = _decode(model, chunk, spec, setting, eos_fill, ref)
            if setting.label == "full-step":
                references.append(gen)
            for p, text in zip(chunk, texts):
                right[p.kind].append(spec.module.score(p, text))
            nfe.append(n)
        _synchronize(model)
        seconds = time.perf_counter() - started
        scores = [s for v in right.values() for s in v]
        row = Row(setting.label, sum(scores) / len(scores), float(torch.cat(nfe).float().mean()),
                  {k: sum(v) / len(v) for k, v in right.items() if v}, seconds / len(problems))
        rows.append(row)
        done[key] = row
        if progress:
            by_kind = "  ".join(f"{k} {v:6.1%}" for k, v in row.by_kind.items())
            print(f"{setting.label:28s} accuracy {row.accuracy:6.1%}  mean NFE {row.mean_nfe:6.2f}  "
                  f"{by_kind}  ({seconds:.0f} s)", file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[Row], task: str = "arith") -> str:
    """The rows as a Markdown table (accuracy overall and per kind, mean NFE; for a timed task
    also the wall time per problem)."""
    spec = TASKS[task]
    kinds = [k for k in spec.module.KINDS if any(k in r.by_kind for r in rows)]
    timed = ["ms / problem"] if spec.timed else []
    head = ["decoding", "accuracy", "mean NFE", *timed, *kinds]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.label, f"{r.accuracy:.1%}", f"{r.mean_nfe:.2f}"]
        if spec.timed:
            cells.append(f"{1000 * r.seconds_per_problem:.1f}")
        cells += [f"{r.by_kind.get(k, float('nan')):.1%}" for k in kinds]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


TARGET_ROWS = ("full-step", f"fixed {C // 4} steps", "threshold 0.9", "oracle")
"""The cot rows the targets read."""


def select(settings: tuple[Setting, ...], labels: list[str]) -> tuple[Setting, ...]:
    """Full-step (the oracle's reference) and the settings labelled ``labels``, in table order;
    ``ValueError`` naming the known labels for an unknown one."""
    known = [s.label for s in settings]
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise ValueError(f"no row {unknown[0]!r}; rows: " + ", ".join(repr(k) for k in known))
    return tuple(s for s in settings if s.label == "full-step" or s.label in labels)


def targets(rows: list[Row]) -> list[tuple[str, bool]]:
    """The ``tiny-cot`` targets (issue 11) checked on the cot table: (statement, met); none when
    a row they read was not run."""
    by = {r.label: r for r in rows}
    if any(k not in by for k in TARGET_ROWS):
        return []
    full, fixed, thr, oracle = (by[k] for k in TARGET_ROWS)
    return [
        (f"full-step accuracy {full.accuracy:.1%} within 60-85%", 0.60 <= full.accuracy <= 0.85),
        (f"fixed {C // 4} steps (G/4) loses {100 * (full.accuracy - fixed.accuracy):.1f} points "
         "(>= 10)", full.accuracy - fixed.accuracy >= 0.10),
        (f"threshold 0.9 loses {100 * (full.accuracy - thr.accuracy):.1f} points (>= 2)",
         full.accuracy - thr.accuracy >= 0.02),
        (f"oracle NFE {oracle.mean_nfe:.2f} = {oracle.mean_nfe / full.mean_nfe:.3f}x full-step "
         "(<= 0.15x)", oracle.mean_nfe <= 0.15 * full.mean_nfe),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sampler.zoo.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="bundled name or folder (default: the task's bundled model)")
    parser.add_argument("--task", choices=sorted(TASKS), default=None,
                        help="the task (default: the --model's when it is a bundled name, else "
                             "arith)")
    parser.add_argument("--n", type=int, default=HELD_OUT,
                        help=f"held-out problems (at most {HELD_OUT})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the splits")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--no-eos-fill", action="store_true",
                        help="decode every position after an EOS instead of filling them")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: a GPU "
                        "when there is one)")
    parser.add_argument("--dtype", default="float32",
                        help="weights dtype (float32 keeps the figures comparable across devices)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--row", action="append", default=None, metavar="LABEL",
                        help="run only this row of the table (repeatable; full-step always runs, "
                             "first); default: every row")
    args = parser.parse_args(argv)
    task = args.task or MODEL_TASKS.get(args.model or "", "arith")
    model_name = args.model or TASKS[task].default_model
    if not 0 < args.n <= HELD_OUT:
        parser.error(f"--n must be in 1..{HELD_OUT} (the held-out set), got {args.n}")
    settings = TASKS[task].settings
    if args.row:
        try:
            settings = select(settings, args.row)
        except ValueError as err:
            parser.error(f"--row: {err}")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model = load_model(model_name, device=args.device, dtype=args.dtype)
    except SamplerError as err:
        parser.exit(2, f"error: {err}\n")
    module = TASKS[task].module
    problems = module.make_splits(seed=args.seed, n_train=0, n_test=HELD_OUT)["test"][:args.n]
    rows = evaluate(model, problems, task=task, settings=settings, batch_size=args.batch_size,
                    eos_fill=not args.no_eos_fill)
    print(markdown(rows, task))
    checks = targets(rows) if task == "cot" else []
    for statement, met in checks:
        print(f"{'met' if met else 'MISSED'}: {statement}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"model": model_name, "task": task, "n": len(problems), "seed": args.seed,
                       "eos_fill": not args.no_eos_fill, "device": str(model.device),
                       "dtype": args.dtype, "rows": [asdict(r) for r in rows],
                       "targets": [{"statement": s, "met": m} for s, m in checks]}, fh, indent=2)


if __name__ == "__main__":
    main()
