"""Per-step cost of LESS's statistics and selection against the Fast-dLLM threshold's, at LLaDA scale.

Both strategies see the same pre-computed logits (batch 1, 256 generated positions, vocabulary
126,464, float32), so only the sampler's own per-step work is timed: the step statistics and the
loop's step decision (`sampler.decide`: the strategy's selection, the shared progress rule, the
tokens). No model runs. Strategies are timed
alternately, several rounds each, and the median per-step time is reported.

The logits follow a synthetic decoding trajectory: each position has a target token whose
probability rises over the steps with noise, as in a real denoising run. In the "decoding"
scenarios the selected positions are committed as the loop would commit them, so LESS computes JS
only where its cheap conditions (confidence, persistence) hold on still-masked positions of the
current block. The "snapshot" scenarios keep all 256 positions masked and make every position of
the block pass the cheap conditions at every step: the worst case, where JS is computed for the
whole block.

    python bench/less_overhead.py            # full size (about 2 GB of RAM)
    python bench/less_overhead.py --quick    # small vocabulary, a smoke run
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from sampler import DecodingSettings, StatsTracker, decide, make_strategy
from sampler.strategies.base import GenerationContext


def trajectory(steps: int, gen: int, vocab: int, *, worst_case: bool, seed: int = 0) -> list[torch.Tensor]:
    """Logits (1, gen, vocab) for each step. Position j's target logit grows with the step."""
    g = torch.Generator().manual_seed(seed)
    background = torch.randn(1, gen, vocab, generator=g) * 2.0
    target = torch.randint(0, vocab - 1, (1, gen), generator=g)
    speed = 0.5 + torch.rand(1, gen, generator=g) * 2.0      # some positions settle early
    out = []
    for t in range(steps):
        logits = background + 0.05 * torch.randn(1, gen, vocab, generator=g)
        height = torch.full((1, gen), 30.0) if worst_case else 6.0 + speed * t * 1.5
        logits.scatter_add_(-1, target[..., None], height[..., None])
        out.append(logits)
    return out


def time_strategy(name: str, params: dict, steps: list[torch.Tensor], settings: DecodingSettings,
                  mask_id: int, *, decode: bool) -> tuple[list[float], list[int]]:
    """Seconds per step over one pass through ``steps`` (the first step is excluded: no history),
    and the number of positions committed at each step.

    ``decode``: commit the selected positions as the loop would (they stop being candidates and the
    block advances); otherwise every position stays masked in the first block (a snapshot).
    """
    strategy = make_strategy(name, params)
    strategy.reset(GenerationContext(batch_size=1, settings=settings))
    tracker = StatsTracker(settings, mask_id)
    gen = steps[0].shape[1]
    masked = torch.ones(1, gen, dtype=torch.bool)
    generated = torch.full((1, gen), mask_id)
    block_of = torch.arange(gen) // settings.block_length
    times, counts = [], []
    current, block_step = 0, 0  # the block being decoded and the steps already spent in it
    for i, logits in enumerate(steps):
        block = int(masked[0].int().argmax()) // settings.block_length
        if block != current:
            current, block_step = block, 0
        start = time.perf_counter()
        stats = tracker.update(logits, masked=masked, in_block=(block_of == block)[None],
                               rows=torch.tensor([0]), block_step=torch.tensor([block_step]))
        # the loop's own step decision (selection, progress rule, tokens), on these logits
        decision = decide(strategy, stats, generated, settings, mask_id=mask_id)
        commit = decision.commit
        counts.append(int(commit.sum()))  # forces every lazy computation to finish
        if i:
            times.append(time.perf_counter() - start)
        if decode:
            masked = masked & ~commit
            generated = decision.generated
        block_step += 1
    return times, counts[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="vocabulary 8,192 and fewer rounds")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--steps", type=int, default=8, help="steps per round")
    ap.add_argument("--topk", type=int, default=64, help="k for the js_topk variant")
    args = ap.parse_args()
    vocab = 8192 if args.quick else 126_464
    rounds = args.rounds or (2 if args.quick else 5)
    gen, mask_id = 256, vocab - 1
    torch.manual_seed(0)
    less_params = {"tau_conf": 0.9, "window": 2, "js_delta": 1e-3}  # drift: the default, coarse
    exact = {**less_params, "drift": "exact"}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(f"batch 1, {gen} masked positions, vocabulary {vocab:,}, float32 logits, "
          f"{args.steps} steps x {rounds} rounds, median seconds per step\n")
    rows = []
    scenarios = (  # (label, worst-case logits, block length, decode)
        ("decoding, gen 256, block 32 (typical)", False, 32, True),
        ("decoding, gen 256, one block of 256", False, 256, True),
        ("snapshot, 256 masked, every position of the block-32 passes (worst case)", True, 32, False),
        ("snapshot, 256 masked, one block, all 256 pass (worst case)", True, 256, False),
    )
    for scenario, worst, block, decode in scenarios:
        steps = trajectory(args.steps + 1, gen, vocab, worst_case=worst)
        runs = {
            "threshold": ("threshold", {"threshold": 0.9}, DecodingSettings(gen_length=gen, block_length=block)),
            "less (default: coarse top-8 JS)": ("less", less_params,
                                                DecodingSettings(gen_length=gen, block_length=block)),
            "less (drift=exact: full-vocab JS)": ("less", exact,
                                                  DecodingSettings(gen_length=gen, block_length=block)),
            f"less (drift=exact, js_topk={args.topk})": (
                "less", exact, DecodingSettings(gen_length=gen, block_length=block, js_topk=args.topk)),
        }
        samples: dict[str, list[float]] = {k: [] for k in runs}
        commits: dict[str, list[int]] = {}
        for _ in range(rounds):  # alternate so that machine noise hits every strategy alike
            for label, (name, params, settings) in runs.items():
                times, counts = time_strategy(name, params, steps, settings, mask_id, decode=decode)
                samples[label] += times
                commits[label] = counts
        base = statistics.median(samples["threshold"])
        for label, values in samples.items():
            med = statistics.median(values)
            rows.append((scenario, label, med, med / base, sum(commits[label]) / len(commits[label])))
        del steps
    width = max(len(r[1]) for r in rows)
    current = None
    for scenario, label, med, ratio, per_step in rows:
        if scenario != current:
            print(f"{scenario}")
            current = scenario
        print(f"  {label:<{width}}  {med * 1e3:8.2f} ms/step   ratio to threshold {ratio:5.2f}"
              f"   ({per_step:.1f} commits/step)")


if __name__ == "__main__":
    main()
