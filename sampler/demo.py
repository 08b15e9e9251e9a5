"""Decode a few held-out problems of a bundled task with its model: full-step against a profile.

    python -m sampler.demo --profile studies/profiles/arith-less.json   # the profile you exported
    python -m sampler.demo [--n 8] [--tau-conf 0.75 --window 3 --js-delta 0.04]  # LESS by hand
    python -m sampler.demo --task cot          # tiny-cot: 128 tokens in 4 blocks of 32

``--task`` is ``arith`` (tiny-arith, the quickest; the default) or ``cot`` (tiny-cot); a profile
names its own task and model. Decodes with the settings the tuner uses for the task (``arith``:
gen_length 32, one block; ``cot``: gen_length 128, blocks of 32; EOS fill: the positions after a
committed end-of-text token are filled at once), or with the profile's own decoding settings, so
its accuracy, forward passes and speed-up are those ``tuner eval`` reports on the same problems.
Full-step (one token per step, no block cache) is the reference, as in the tuner's baseline.
Prints each problem with the profile's answer, whether it is right, and the forward passes both
decodings spent; then accuracy and mean NFE of both and the speed-up.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from .errors import SamplerError
from .models import load_model
from .profile import load_profile
from .settings import DecodingSettings
from .strategies import Fixed, LessParams, Strategy, make_strategy
from .zoo.decode import Decoded, decode
from .zoo.evaluate import TASKS, EvalTask

__all__ = ["main", "TUNER_SETTINGS"]

TUNER_SETTINGS = TASKS["arith"].decoding()
"""What ``studies/arith.toml`` decodes with."""


def _chosen(args: argparse.Namespace) -> tuple[str, str, Strategy, DecodingSettings, str | None]:
    """(task, label, strategy, settings, model name) from --profile or the LESS flags."""
    if args.profile is None:
        task = args.task or "arith"
        strategy = make_strategy("less", {"tau_conf": args.tau_conf, "window": args.window,
                                          "js_delta": args.js_delta})
        return task, "less", strategy, TASKS[task].decoding(), None
    profile = load_profile(args.profile)
    task = args.task or (profile.task if profile.task in TASKS else "arith")
    wanted = TASKS[task].module.GEN_LENGTH
    if profile.decoding.gen_length != wanted:
        raise SamplerError(f"profile {args.profile} decodes {profile.decoding.gen_length} tokens; "
                           f"the {task} demo needs a profile tuned on {task} "
                           f"(gen_length {wanted}).")
    return (task, profile.strategy, profile.make_strategy(), profile.decoding,
            profile.model.name if profile.model else None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sampler.demo", description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default=None, help="a profile exported by `tuner export`")
    ap.add_argument("--task", choices=sorted(TASKS), default=None,
                    help="bundled task (default: the profile's, else arith)")
    ap.add_argument("--model", default=None,
                    help="bundled name or folder (default: the profile's model, else the task's: "
                         "tiny-arith, tiny-cot)")
    ap.add_argument("--n", type=int, default=8, help="problems to decode (default 8)")
    published = LessParams()  # the authors' settings
    ap.add_argument("--tau-conf", type=float, default=published.tau_conf,
                    help="LESS, without --profile")
    ap.add_argument("--window", type=int, default=published.window, help="LESS, without --profile")
    ap.add_argument("--js-delta", type=float, default=published.js_delta,
                    help="LESS, without --profile")
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error("--n must be at least 1")
    try:
        task, label, strategy, settings, tuned_for = _chosen(args)
        spec = TASKS[task]
        model = load_model(args.model or tuned_for or spec.default_model, device="cpu")
        # The held-out split the model never saw in training (the sizes fix the split: keep defaults).
        problems = spec.module.make_splits(seed=0, n_train=0)["test"][: args.n]
        reference = dataclasses.replace(settings, cache="none")
        full = decode(model, problems, Fixed.full_step(reference), reference)
        tuned = decode(model, problems, strategy, settings)
    except SamplerError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    _report(spec, problems, label, full, tuned)
    return 0


def _report(spec: EvalTask, problems, label: str, full: Decoded, tuned: Decoded) -> None:
    texts = {"full-step": full.texts, label: tuned.texts}
    right = {name: [spec.module.score(p, t) for p, t in zip(problems, ts)]
             for name, ts in texts.items()}
    for i, problem in enumerate(problems):
        answer = " | ".join(texts[label][i].strip().splitlines())
        print(f"{problem.question}\n  {label}: {answer}   "
              f"[{'right' if right[label][i] else 'wrong'}; {int(tuned.nfe[i])} forward passes, "
              f"full-step {int(full.nfe[i])}]")
    n = len(problems)
    f_nfe, t_nfe = full.nfe.float().mean().item(), tuned.nfe.float().mean().item()
    print(f"\nfull-step: accuracy {sum(right['full-step']) / n:.0%}, mean NFE {f_nfe:.2f}")
    print(f"{label + ':':<10} accuracy {sum(right[label]) / n:.0%}, mean NFE {t_nfe:.2f} "
          f"({f_nfe / t_nfe:.2f}x fewer forward passes)")


if __name__ == "__main__":
    raise SystemExit(main())
