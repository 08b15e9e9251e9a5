"""Train the bundled masked diffusion LM on the ``arith`` task, on a CPU.

    python -m sampler.zoo.train --out sampler/zoo/tiny_arith
    python -m sampler.zoo.train --out /tmp/smoke --smoke      # 3 steps of a tiny model, seconds

The model is a small ModernBERT (a built-in transformers architecture: bidirectional attention,
rotary positions, so left padding does not move anything). Each training sequence is the question,
``[SEP]``, then the answer padded with ``[EOS]`` up to ``GEN_LENGTH``, as in LLaDA's SFT: the model
learns to end its answer. The objective is LLaDA's masked-diffusion loss: per example draw
``t ~ U(eps, 1)``, mask each answer position (padding included) with probability ``t``, never the
prompt, and take the cross-entropy on the masked positions weighted by ``1 / t`` and normalised by
the answer length. AdamW with linear warm-up and cosine decay. The folder written by ``--out`` holds
the config, the safetensors weights, the tokenizer and ``training.json`` (settings and final loss);
``--save-every N`` rewrites it every N steps, so a long run can be inspected while it trains.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import ModernBertConfig, ModernBertForMaskedLM, PreTrainedTokenizerFast

from .arith import GEN_LENGTH, make_splits
from .tokenizer import build_tokenizer

__all__ = ["TrainConfig", "build_model", "train", "save", "main"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run."""

    out: str
    steps: int = 14000
    batch_size: int = 32
    lr: float = 7e-4  # 2e-3 collapsed the attention (one-hot heads) within 1,000 steps
    min_lr_ratio: float = 0.1
    warmup: int = 500
    weight_decay: float = 0.1
    seed: int = 0
    layers: int = 4
    hidden: int = 256
    heads: int = 4
    intermediate: int = 768
    eps: float = 1e-3
    threads: int = 2
    device: str = "cpu"
    log_every: int = 200
    save_every: int = 0


SMOKE = dict(steps=3, batch_size=8, layers=1, hidden=32, heads=2, intermediate=64, warmup=1,
             log_every=1, save_every=0)
"""Overrides for ``--smoke``: a tiny model and a few steps, to check the pipeline in seconds."""


def build_model(cfg: TrainConfig, tokenizer: PreTrainedTokenizerFast) -> ModernBertForMaskedLM:
    """A fresh ModernBERT masked LM sized by ``cfg``, with the tokenizer's special ids."""
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden,
        intermediate_size=cfg.intermediate,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        layer_types=["full_attention"] * cfg.layers,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        sep_token_id=tokenizer.sep_token_id,
        cls_token_id=tokenizer.sep_token_id,
        bos_token_id=None,
        mask_token_id=tokenizer.mask_token_id,
    )
    return ModernBertForMaskedLM(config)


def encode_batch(tokenizer: PreTrainedTokenizerFast, questions: list[str], answers: list[str]
                 ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Left-padded ``prompt + answer + [EOS]...`` ids, their attention mask, and the answer start.

    Every row ends with exactly ``GEN_LENGTH`` answer positions, so the answer span is the same
    column range for the whole batch.
    """
    prompts = tokenizer(questions)["input_ids"]
    width = max(len(p) for p in prompts)
    rows, masks = [], []
    for prompt, answer in zip(prompts, answers):
        ans = tokenizer(answer, add_special_tokens=False)["input_ids"]
        ans = ans + [tokenizer.eos_token_id] * (GEN_LENGTH - len(ans))
        pad = width - len(prompt)
        rows.append([tokenizer.pad_token_id] * pad + prompt + ans)
        masks.append([0] * pad + [1] * (len(prompt) + GEN_LENGTH))
    return torch.tensor(rows), torch.tensor(masks), width


def diffusion_loss(model: ModernBertForMaskedLM, ids: torch.Tensor, attention: torch.Tensor,
                   start: int, mask_id: int, eps: float, generator: torch.Generator) -> torch.Tensor:
    """LLaDA's masked-diffusion loss on the answer span ``ids[:, start:]``."""
    batch = ids.shape[0]
    # Stratified draw (one t per slice of [0, 1)): each t is still U(eps, 1), the batch covers
    # the whole range, and the variance of the 1/t-weighted loss drops.
    u = (torch.arange(batch) + torch.rand(batch, generator=generator)) / batch
    t = (eps + (1 - eps) * u[torch.randperm(batch, generator=generator)]).unsqueeze(1)
    masked = torch.zeros_like(ids, dtype=torch.bool)
    masked[:, start:] = torch.rand(batch, ids.shape[1] - start, generator=generator) < t
    noisy = ids.masked_fill(masked, mask_id)
    device = model.device  # the noise is drawn on the CPU, so a run is the same on any device
    logits = model(input_ids=noisy.to(device), attention_mask=attention.to(device)).logits[:, start:]
    target = ids[:, start:].to(device)
    ce = F.cross_entropy(logits.float().transpose(1, 2), target, reduction="none")
    ce = ce * masked[:, start:].to(device) / t.to(device)
    return ce.sum() / (batch * target.shape[1])


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up to ``cfg.lr``, then cosine decay to ``cfg.lr * cfg.min_lr_ratio``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def train(cfg: TrainConfig) -> dict:
    """Run the training described by ``cfg``; save model and tokenizer to ``cfg.out``."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)

    tokenizer = build_tokenizer()
    model = build_model(cfg, tokenizer).to(cfg.device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"config: {json.dumps(asdict(cfg))}", flush=True)
    print(f"model: ModernBERT {cfg.layers}x{cfg.hidden}, {n_params / 1e6:.2f} M parameters, "
          f"vocab {len(tokenizer)}, gen_length {GEN_LENGTH}", flush=True)

    train_set = make_splits(seed=cfg.seed, n_train=cfg.steps * cfg.batch_size)["train"]
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "norm" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "norm" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=cfg.lr, betas=(0.9, 0.98))

    model.train()
    began = time.time()
    window, window_start, loss_value = [], time.time(), float("nan")
    for step in range(cfg.steps):
        lr = learning_rate(cfg, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        chunk = train_set[step * cfg.batch_size:(step + 1) * cfg.batch_size]
        ids, attention, start = encode_batch(tokenizer, [p.question for p in chunk],
                                             [p.answer for p in chunk])
        loss = diffusion_loss(model, ids, attention, start, tokenizer.mask_token_id, cfg.eps,
                              generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        window.append(loss.item())
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            loss_value = sum(window) / len(window)
            rate = len(window) / (time.time() - window_start)
            elapsed = time.time() - began
            eta = (cfg.steps - step - 1) / rate
            print(f"step {step + 1:>6}/{cfg.steps} ({100 * (step + 1) / cfg.steps:5.1f}%) "
                  f"loss {loss_value:.4f} lr {lr:.2e} {rate:.2f} steps/s "
                  f"elapsed {elapsed / 60:.1f} min eta {eta / 60:.1f} min", flush=True)
            window, window_start = [], time.time()
        if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < cfg.steps:
            save(cfg, model, tokenizer, step + 1, loss_value, time.time() - began)
            model.train()

    summary = save(cfg, model, tokenizer, cfg.steps, loss_value, time.time() - began)
    print(f"done in {summary['wall_seconds'] / 60:.1f} min, final loss {loss_value:.4f}; "
          f"saved to {cfg.out}", flush=True)
    return summary


def save(cfg: TrainConfig, model: ModernBertForMaskedLM, tokenizer: PreTrainedTokenizerFast,
         step: int, loss: float, wall: float) -> dict:
    """Write model, tokenizer and ``training.json`` (settings, steps done, loss) to ``cfg.out``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    summary = {"config": asdict(cfg), "steps_done": step,
               "parameters": sum(p.numel() for p in model.parameters()),
               "final_loss": round(loss, 4), "wall_seconds": round(wall, 1),
               "torch": torch.__version__}
    (out / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Command-line flags to a ``TrainConfig`` (``--smoke`` overrides the size and step count)."""
    defaults = TrainConfig(out="")
    parser = argparse.ArgumentParser(prog="python -m sampler.zoo.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder to write the model into")
    parser.add_argument("--smoke", action="store_true", help="a few steps of a tiny model")
    for name, value in asdict(defaults).items():
        if name != "out":
            parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    if args.pop("smoke"):
        args.update(SMOKE)
    if args["device"].startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args['device']}: no CUDA device is available; use --device cpu")
    return TrainConfig(**args)


def main(argv: list[str] | None = None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
