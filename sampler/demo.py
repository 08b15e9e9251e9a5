"""Decode a few held-out ``arith`` problems with the bundled model: full-step against LESS.

    python -m sampler.demo [--n 8] [--model tiny-arith] [--tau-conf 0.9 --window 2 --js-delta 1e-3]

Prints each problem with LESS's answer, whether it is right, and the forward passes each decoding
spent; then accuracy and mean NFE of both and the speed-up.
"""

from __future__ import annotations

import argparse
import sys

from .errors import SamplerError
from .generate import generate
from .models import load_model
from .zoo import arith


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sampler.demo", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="tiny-arith", help="bundled name or folder (default tiny-arith)")
    ap.add_argument("--n", type=int, default=8, help="problems to decode (default 8)")
    ap.add_argument("--tau-conf", type=float, default=0.9)
    ap.add_argument("--window", type=int, default=2)
    ap.add_argument("--js-delta", type=float, default=1e-3)
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error("--n must be at least 1")
    try:
        model = load_model(args.model, device="cpu")
        # The held-out split the model never saw in training (the sizes fix the split: keep defaults).
        problems = arith.make_splits(seed=0, n_train=0)["test"][: args.n]
        batch = model.tokenizer([p.question for p in problems], padding=True, return_tensors="pt")
        common = dict(attention_mask=batch.attention_mask, gen_length=arith.GEN_LENGTH,
                      block_length=arith.BLOCK_LENGTH)
        full = generate(model, batch.input_ids, strategy="fixed",
                        params={"steps": arith.GEN_LENGTH}, **common)
        less = generate(model, batch.input_ids, strategy="less",
                        params={"tau_conf": args.tau_conf, "window": args.window,
                                "js_delta": args.js_delta}, **common)
    except SamplerError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    decode = model.tokenizer.batch_decode
    right = {"full-step": 0.0, "less": 0.0}
    for i, problem in enumerate(problems):
        texts = {name: decode(out.generated[i:i + 1], skip_special_tokens=True)[0]
                 for name, out in (("full-step", full), ("less", less))}
        ok = {name: arith.score(problem, text) for name, text in texts.items()}
        for name in right:
            right[name] += ok[name]
        answer = " | ".join(texts["less"].strip().splitlines())
        print(f"{problem.question}\n  LESS: {answer}   [{'right' if ok['less'] else 'wrong'}; "
              f"{int(less.nfe[i])} forward passes, full-step {int(full.nfe[i])}]")
    n = len(problems)
    f_nfe, l_nfe = full.nfe.float().mean().item(), less.nfe.float().mean().item()
    print(f"\nfull-step: accuracy {right['full-step'] / n:.0%}, mean NFE {f_nfe:.1f}")
    print(f"LESS:      accuracy {right['less'] / n:.0%}, mean NFE {l_nfe:.1f} "
          f"({f_nfe / l_nfe:.1f}x fewer forward passes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
