"""Block KV cache: per-step time and tokens per second of an LLaDA-8B-shaped native model.

Builds the native LLaDA architecture from LLaDA-8B's config (32 layers, d_model 4096, 32 heads,
MLP 12,288, vocabulary 126,464) with random weights (no download) and decodes with
`sampler.generate` under cache none / prefix / dual, side by side in one run, for each batch size
and prompt length. The rule is `fixed` with 4 tokens per step (gen 256, block 32: 8 steps per
block, 64 steps), so every mode takes the same number of steps and only their cost differs.

For each run it prints the mean milliseconds per step, tokens per second (batch x gen_length /
wall time), the ratio to `none`, and the sampler's own share of a step (the wall time not spent in
the model's forward passes: statistics, the rule, the loop; the device is synchronised around
every model call), and the mean milliseconds of one full pass and of one cached pass (the
block-only forward of `dual`, the block-and-suffix forward of `prefix`). Random weights give near-uniform predictions; the cost of a step does not depend
on them.

    python bench/native_cache.py                              # on a GPU, bf16, the full shape
    python bench/native_cache.py --layers 1 --batch 1 --prompt 128 --gen 64   # a CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import sampler
from sampler.models import LLaDAModel
from sampler.native import BidirectionalTransformer, native_config

LLADA_8B = {
    "model_type": "llada", "d_model": 4096, "n_heads": 32, "n_kv_heads": 32, "n_layers": 32,
    "mlp_hidden_size": 12288, "embedding_size": 126464, "vocab_size": 126464,
    "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "max_sequence_length": 4096,
    "block_type": "llama", "activation_type": "silu", "layer_norm_type": "rms", "rope": True,
    "include_bias": False, "include_qkv_bias": False, "weight_tying": False,
}
MASK_ID = 126336


def build(layers: int, device: torch.device, dtype: torch.dtype) -> LLaDAModel:
    config = native_config({**LLADA_8B, "n_layers": layers})
    with torch.device(device):
        net = BidirectionalTransformer(config).to(dtype)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.02) if p.dim() > 1 else p.fill_(1.0)
    return LLaDAModel(network=net.eval(), tokenizer=None, mask_id=MASK_ID, eos_id=126081,
                      pad_id=126081, name="llada-8b-shape", max_length=4096)


class ModelClock:
    """Wraps the model's forward methods to add up their synchronised wall time, in all and per
    method (a full pass: ``span_logits`` / ``full_logits``; a cached pass: ``cached_logits``)."""

    NAMES = ("span_logits", "full_logits", "cached_logits")

    def __init__(self, model: LLaDAModel) -> None:
        self.reset()
        for name in self.NAMES:
            setattr(model, name, self._timed(name, getattr(model, name)))

    def reset(self) -> None:
        self.seconds = 0.0
        self.per = {name: [0.0, 0] for name in self.NAMES}

    def mean_ms(self, *names: str) -> float:
        total, calls = (sum(self.per[n][i] for n in names) for i in (0, 1))
        return 1000 * total / calls if calls else float("nan")

    def _timed(self, name, fn):
        def run(*args, **kwargs):
            _sync()
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            _sync()
            took = time.perf_counter() - start
            self.seconds += took
            self.per[name][0] += took
            self.per[name][1] += 1
            return out
        return run


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run_once(model: LLaDAModel, clock: ModelClock, batch: int, prompt: int, gen: int, block: int,
             cache: str) -> dict[str, float]:
    ids = torch.randint(0, 126000, (batch, prompt), generator=torch.Generator().manual_seed(0))
    steps = gen // 4
    clock.reset()
    _sync()
    start = time.perf_counter()
    out = sampler.generate(model, ids, strategy="fixed", params={"steps": steps}, gen_length=gen,
                           block_length=block, cache=cache)
    _sync()
    wall = time.perf_counter() - start
    n_steps = int(out.nfe.max())
    return {"ms_per_step": 1000 * wall / n_steps, "tokens_per_s": batch * gen / wall,
            "sampler_share": (wall - clock.seconds) / wall, "steps": n_steps, "wall_s": wall,
            "full_pass_ms": clock.mean_ms("span_logits", "full_logits"),
            "cached_pass_ms": clock.mean_ms("cached_logits")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=32, help="layers (32 = LLaDA-8B)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--prompt", type=int, nargs="+", default=[128, 768])
    parser.add_argument("--gen", type=int, default=256)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--modes", default="none,prefix,dual")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on CUDA, float32 on CPU")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype) if args.dtype else (
        torch.bfloat16 if device.type == "cuda" else torch.float32)
    modes = args.modes.split(",")
    model = build(args.layers, device, dtype)
    clock = ModelClock(model)
    where = (torch.cuda.get_device_name() if device.type == "cuda"
             else f"CPU ({platform.processor() or platform.machine()}, "
                  f"{torch.get_num_threads()} threads)")
    print(f"LLaDA-8B shape, {args.layers} layer(s), random weights, {dtype}, on {where}; gen "
          f"{args.gen}, block {args.block}, fixed 4 tokens/step")
    print(f"{'batch':>5} {'prompt':>6} {'cache':>6} {'ms/step':>9} {'tok/s':>9} {'x none':>7} "
          f"{'sampler':>8} {'full pass ms':>13} {'cached pass ms':>15}")
    rows = []
    for batch in args.batch:
        for prompt in args.prompt:
            run_once(model, clock, batch, prompt, args.block * 2, args.block, modes[0])  # warm-up
            base = None
            for mode in modes:
                r = run_once(model, clock, batch, prompt, args.gen, args.block, mode)
                base = base or r["tokens_per_s"]
                r.update(batch=batch, prompt=prompt, cache=mode, vs_none=r["tokens_per_s"] / base)
                rows.append(r)
                print(f"{batch:>5} {prompt:>6} {mode:>6} {r['ms_per_step']:>9.1f} "
                      f"{r['tokens_per_s']:>9.1f} {r['vs_none']:>7.2f} "
                      f"{r['sampler_share']:>8.1%} {r['full_pass_ms']:>13.1f} "
                      f"{r['cached_pass_ms']:>15.1f}")
    if args.json:
        args.json.write_text(json.dumps({"device": where, "layers": args.layers,
                                         "dtype": str(dtype), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
