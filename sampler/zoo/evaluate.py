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
    python -m sampler.zoo.evaluate --model tiny-cot --json eval.json --resume
        # the JSON is rewritten after every row; --resume keeps the rows it already holds (same
        # model weights, problems and settings) and runs the others: a long CPU run survives
        # being stopped

With ``--json``, the file is written after every row (whole or not at all), with ``"complete":
false`` until the last, and full-step's output (the oracle's reference) beside it while the
table is incomplete (``<json>.full-step.safetensors``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import torch

from ..atomic import atomic_path, write_text_atomically
from ..errors import SamplerError
from ..models import DiffusionModel, load_model
from ..settings import DecodingSettings
from ..strategies import make_strategy
from . import arith, cot
from .decode import decode
from .problems import Problem

__all__ = ["SETTINGS", "COT_SETTINGS", "TASKS", "Setting", "Row", "TableFile", "evaluate",
           "markdown", "select", "targets", "main"]


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

    def decoding(self, *, eos_fill: bool = True, cache: str = "none") -> DecodingSettings:
        """The task's decoding settings (its generation and block lengths): with the defaults,
        what ``studies/<task>.toml`` decodes with."""
        return DecodingSettings(gen_length=self.module.GEN_LENGTH,
                                block_length=self.module.BLOCK_LENGTH, eos_fill=eos_fill,
                                cache=cache)


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
    out = decode(model, problems, make_strategy(setting.strategy, setting.params),
                 task.decoding(eos_fill=eos_fill, cache=setting.cache), reference=reference)
    return out.texts, out.generated, out.nfe


def _synchronize(model: DiffusionModel) -> None:
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)


def _key(setting: Setting) -> str:
    return json.dumps([setting.strategy, setting.params, setting.cache], sort_keys=True)


def evaluate(model: DiffusionModel, problems: list[Problem], *, task: str = "arith",
             settings: tuple[Setting, ...] | None = None, batch_size: int = 200,
             eos_fill: bool = True, progress: bool = True, done: dict[str, Row] | None = None,
             reference: torch.Tensor | None = None,
             on_row: Callable[[Row, torch.Tensor | None], Any] | None = None) -> list[Row]:
    """One :class:`Row` per setting (default: the task's table) on ``problems``; the first
    setting must be full-step (the oracle's reference).

    ``done`` (label -> row) holds rows measured before on the same problems (a resumed table):
    they are taken as they are, not run again; ``reference`` is then full-step's output
    (``(len(problems), gen_length)`` tokens) when the oracle still has to run. ``on_row(row,
    reference)`` is called after each row that ran, with full-step's output once it is known."""
    spec = TASKS[task]
    settings = spec.settings if settings is None else settings
    kinds = spec.module.KINDS
    rows: list[Row] = []
    done = dict(done or {})
    same: dict[str, Row] = {}  # a setting listed twice (threshold 0.9 = its cache-none row) runs once
    for setting in settings:
        key = _key(setting)
        if setting.label in done or key in same:
            kept = setting.label in done
            row = done[setting.label] if kept else replace(same[key], label=setting.label)
            rows.append(row)
            same.setdefault(key, row)
            if progress and kept:
                print(f"{setting.label:28s} accuracy {row.accuracy:6.1%}  mean NFE "
                      f"{row.mean_nfe:6.2f}  (kept from the resumed table)", file=sys.stderr,
                      flush=True)
            continue
        if setting.strategy == "oracle" and reference is None:
            raise ValueError("the oracle row needs full-step's output: run full-step first")
        _synchronize(model)
        started = time.perf_counter()
        right: dict[str, list[float]] = {k: [] for k in kinds}
        nfe: list[torch.Tensor] = []
        generated: list[torch.Tensor] = []
        for start in range(0, len(problems), batch_size):
            chunk = problems[start:start + batch_size]
            ref = (reference[start:start + len(chunk)].to(model.device)
                   if setting.strategy == "oracle" else None)
            texts, gen, n = _decode(model, chunk, spec, setting, eos_fill, ref)
            if setting.label == "full-step":
                generated.append(gen.cpu())
            for p, text in zip(chunk, texts):
                right[p.kind].append(spec.module.score(p, text))
            nfe.append(n)
        _synchronize(model)
        seconds = time.perf_counter() - started
        if generated:
            reference = torch.cat(generated)
        scores = [s for v in right.values() for s in v]
        row = Row(setting.label, sum(scores) / len(scores), float(torch.cat(nfe).float().mean()),
                  {k: sum(v) / len(v) for k, v in right.items() if v}, seconds / len(problems))
        rows.append(row)
        same[key] = row
        if on_row is not None:
            on_row(row, reference)
        if progress:
            by_kind = "  ".join(f"{k} {v:6.1%}" for k, v in row.by_kind.items())
            print(f"{setting.label:28s} accuracy {row.accuracy:6.1%}  mean NFE {row.mean_nfe:6.2f}  "
                  f"{by_kind}  ({seconds:.0f} s)", file=sys.stderr, flush=True)
    return rows


class TableFile:
    """The ``--json`` file of a table, rewritten whole after every row, and full-step's output
    kept beside it (``<path>.full-step.safetensors``) until the table is complete, so that a
    stopped run can be resumed (:meth:`resume`)."""

    def __init__(self, path: str | Path, header: dict[str, Any]) -> None:
        self.path, self.header = Path(path), header
        self.reference_path = self.path.with_name(self.path.name + ".full-step.safetensors")
        self.rows: dict[str, Row] = {}
        self._reference_saved = False

    def resume(self) -> torch.Tensor | None:
        """Read the rows of an earlier run of the same table (nothing when there is no file);
        ``ValueError`` with one line when the file holds another model's or problems' table.
        Returns full-step's output when the file kept it."""
        if not self.path.exists():
            return None
        try:
            saved = json.loads(self.path.read_text())
            header = {k: saved[k] for k in self.header}
            rows = [Row(**r) for r in saved["rows"]]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{self.path} is not a table this command wrote ({err}); "
                             "move it away or drop --resume") from None
        differ = [k for k in self.header if header[k] != self.header[k]]
        if differ:
            k = differ[0]
            raise ValueError(f"{self.path} holds a table with {k} = {header[k]!r}, not "
                             f"{self.header[k]!r}; use another --json file or drop --resume")
        self.rows = {r.label: r for r in rows}
        if self.reference_path.exists():
            from safetensors.torch import load_file

            return load_file(str(self.reference_path))["full_step"]
        return None

    def write(self, rows: list[Row], reference: torch.Tensor | None, *, complete: bool,
              checks: list[tuple[str, bool]] = ()) -> None:
        """Write the rows (and, while incomplete, full-step's output); remove the kept output
        once the table is complete."""
        if reference is not None and not complete and not self._reference_saved:
            from safetensors.torch import save_file

            with atomic_path(self.reference_path) as tmp:
                save_file({"full_step": reference.contiguous()}, str(tmp))
            self._reference_saved = True
        body = {**self.header, "complete": complete, "rows": [asdict(r) for r in rows],
                "targets": [{"statement": s, "met": m} for s, m in checks]}
        write_text_atomically(self.path, json.dumps(body, indent=2) + "\n")
        if complete:
            self.reference_path.unlink(missing_ok=True)


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


def _in_table_order(rows: list[Row], task: str) -> list[Row]:
    """One row per label (the last given wins), in the order of the task's table; labels the
    table does not know go last."""
    order = {s.label: i for i, s in enumerate(TASKS[task].settings)}
    by_label = {r.label: r for r in rows}
    return sorted(by_label.values(), key=lambda r: order.get(r.label, len(order)))


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
    parser.add_argument("--json", help="also write the rows to this file (after every row)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows the --json file already holds (same model weights, "
                             "problems and settings) and run the others")
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
    if args.resume and not args.json:
        parser.error("--resume needs --json FILE: the table to resume")
    json_path = Path(args.json).expanduser() if args.json else None
    if json_path is not None and json_path.is_dir():
        parser.error(f"--json {args.json}: is a folder")
    if json_path is not None and not json_path.parent.is_dir():
        parser.error(f"--json {args.json}: the folder {json_path.parent} does not exist")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model = load_model(model_name, device=args.device, dtype=args.dtype)
    except SamplerError as err:
        parser.exit(2, f"error: {err}\n")
    module = TASKS[task].module
    problems = module.make_splits(seed=args.seed, n_train=0, n_test=HELD_OUT)["test"][:args.n]
    table, reference, on_row = None, None, None
    if json_path is not None:
        table = TableFile(json_path, {
            "model": model_name, "weights": model.weights_fingerprint(), "task": task,
            "n": len(problems), "seed": args.seed, "eos_fill": not args.no_eos_fill,
            "device": model.device.type, "dtype": args.dtype, "batch_size": args.batch_size})
        if args.resume:
            try:
                reference = table.resume()
            except ValueError as err:
                parser.exit(2, f"error: --resume: {err}\n")
            oracle_to_run = any(s.strategy == "oracle" and s.label not in table.rows
                                for s in settings)
            if reference is None and oracle_to_run:
                table.rows.pop("full-step", None)  # its output was not kept: run it again
        measured: list[Row] = []

        def on_row(row: Row, full_step: torch.Tensor | None) -> None:
            measured.append(row)
            table.write(_in_table_order([*table.rows.values(), *measured], task), full_step,
                        complete=False)

    rows = evaluate(model, problems, task=task, settings=settings, batch_size=args.batch_size,
                    eos_fill=not args.no_eos_fill, done=table.rows if table else None,
                    reference=reference, on_row=on_row)
    if table is not None:  # rows of earlier runs that this one did not ask for stay in the table
        rows = _in_table_order([*table.rows.values(), *rows], task)
    print(markdown(rows, task))
    checks = targets(rows) if task == "cot" else []
    for statement, met in checks:
        print(f"{'met' if met else 'MISSED'}: {statement}")
    if table is not None:
        table.write(rows, None, complete=True, checks=checks)


if __name__ == "__main__":
    main()
