"""Evaluate a model on the ``arith`` held-out set through the sampler: the model card's table.

For each decoding setting (full-step; fixed at gen_length / 2, / 4, / 8; the Fast-dLLM threshold
at 0.5, 0.7, 0.9; the oracle, whose reference is the full-step output), the exact-match accuracy
(the task's validators: exact number, valid split, valid permutation), per kind, and the mean
number of forward passes (NFE) per problem.

    python -m sampler.zoo.evaluate                      # tiny-arith, the 600 held-out problems
    python -m sampler.zoo.evaluate --model FOLDER --n 300 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field

import torch

from ..errors import SamplerError
from ..generate import generate
from ..models import DiffusionModel, load_model
from .arith import BLOCK_LENGTH, GEN_LENGTH, KINDS, ArithProblem, make_splits, score

__all__ = ["SETTINGS", "Row", "evaluate", "markdown", "main"]

SETTINGS: tuple[tuple[str, str, dict], ...] = (
    ("full-step", "fixed", {"steps": GEN_LENGTH, "score": "low_confidence"}),
    (f"fixed {GEN_LENGTH // 2} steps (G/2)", "fixed", {"steps": GEN_LENGTH // 2, "score": "low_confidence"}),
    (f"fixed {GEN_LENGTH // 4} steps (G/4)", "fixed", {"steps": GEN_LENGTH // 4, "score": "low_confidence"}),
    (f"fixed {GEN_LENGTH // 8} steps (G/8)", "fixed", {"steps": GEN_LENGTH // 8, "score": "low_confidence"}),
    ("threshold 0.5", "threshold", {"threshold": 0.5}),
    ("threshold 0.7", "threshold", {"threshold": 0.7}),
    ("threshold 0.9", "threshold", {"threshold": 0.9}),
    ("oracle", "oracle", {}),
)
"""(label, strategy, params) of every row of the model card; full-step must come first (it is
the oracle's reference)."""


@dataclass
class Row:
    label: str
    accuracy: float
    mean_nfe: float
    by_kind: dict[str, float] = field(default_factory=dict)


def _decode(model: DiffusionModel, problems: list[ArithProblem], strategy: str, params: dict,
            eos_fill: bool, reference: torch.Tensor | None) -> tuple[list[str], torch.Tensor,
                                                                     torch.Tensor]:
    tok = model.tokenizer
    batch = tok([p.question for p in problems], padding=True, return_tensors="pt")
    extra = {"reference": reference} if reference is not None else {}
    out = generate(model, batch.input_ids.to(model.device),
                   attention_mask=batch.attention_mask.to(model.device), strategy=strategy,
                   params=params, gen_length=GEN_LENGTH, block_length=BLOCK_LENGTH,
                   temperature=0.0, eos_fill=eos_fill, **extra)
    gen = out.sequences[:, batch.input_ids.shape[1]:]
    return tok.batch_decode(gen, skip_special_tokens=True), gen, out.nfe.cpu()


def evaluate(model: DiffusionModel, problems: list[ArithProblem], *, batch_size: int = 200,
             eos_fill: bool = True, progress: bool = True) -> list[Row]:
    """One :class:`Row` per entry of :data:`SETTINGS` on ``problems``."""
    rows: list[Row] = []
    references: list[torch.Tensor] = []
    for label, strategy, params in SETTINGS:
        started = time.perf_counter()
        right: dict[str, list[float]] = {k: [] for k in KINDS}
        nfe: list[torch.Tensor] = []
        for i, start in enumerate(range(0, len(problems), batch_size)):
            chunk = problems[start:start + batch_size]
            ref = references[i] if strategy == "oracle" else None
            texts, gen, n = _decode(model, chunk, strategy, params, eos_fill, ref)
            if label == "full-step":
                references.append(gen)
            for p, text in zip(chunk, texts):
                right[p.kind].append(score(p, text))
            nfe.append(n)
        scores = [s for v in right.values() for s in v]
        row = Row(label, sum(scores) / len(scores), float(torch.cat(nfe).float().mean()),
                  {k: sum(v) / len(v) for k, v in right.items() if v})
        rows.append(row)
        if progress:
            kinds = "  ".join(f"{k} {v:6.1%}" for k, v in row.by_kind.items())
            print(f"{label:24s} accuracy {row.accuracy:6.1%}  mean NFE {row.mean_nfe:5.2f}  "
                  f"{kinds}  ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[Row]) -> str:
    """The rows as a Markdown table (accuracy overall and per kind, mean NFE)."""
    kinds = [k for k in KINDS if any(k in r.by_kind for r in rows)]
    lines = ["| decoding | accuracy | mean NFE | " + " | ".join(kinds) + " |",
             "|---|---|---|" + "---|" * len(kinds)]
    for r in rows:
        lines.append(f"| {r.label} | {r.accuracy:.1%} | {r.mean_nfe:.2f} | "
                     + " | ".join(f"{r.by_kind.get(k, float('nan')):.1%}" for k in kinds) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sampler.zoo.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-arith", help="bundled name or folder")
    parser.add_argument("--n", type=int, default=600, help="held-out problems (at most 600)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the splits")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--no-eos-fill", action="store_true",
                        help="decode every position after an EOS instead of filling them")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if not 0 < args.n <= 600:
        parser.error(f"--n must be in 1..600 (the held-out set), got {args.n}")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model = load_model(args.model)
    except SamplerError as err:
        parser.exit(2, f"error: {err}\n")
    problems = make_splits(seed=args.seed, n_train=0, n_test=600)["test"][:args.n]
    rows = evaluate(model, problems, batch_size=args.batch_size, eos_fill=not args.no_eos_fill)
    print(markdown(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"model": args.model, "n": len(problems), "seed": args.seed,
                       "eos_fill": not args.no_eos_fill,
                       "rows": [r.__dict__ for r in rows]}, fh, indent=2)


if __name__ == "__main__":
    main()
