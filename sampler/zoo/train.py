"""Train the bundled masked diffusion LMs: ``tiny-arith`` and ``tiny-cot`` (CPU or GPU).

    python -m sampler.zoo.train --out sampler/zoo/tiny_arith
    python -m sampler.zoo.train --task cot --out sampler/zoo/tiny_cot --save-every 250 [--resume]
    python -m sampler.zoo.train --out /tmp/smoke --smoke      # 3 steps of a tiny model, seconds
    python -m sampler.zoo.train --task cot --help             # the cot recipe's defaults

``--task arith`` (the default) trains a small ModernBERT (a built-in transformers architecture:
bidirectional attention, rotary positions, so left padding does not move anything) on
:mod:`sampler.zoo.arith`. ``--task cot`` trains the native LLaDA architecture
(:mod:`sampler.native`: pre-norm RMSNorm blocks, rotary attention, SwiGLU) on :mod:`sampler.zoo.cot`
with LLaDA's conventions (a mask token, EOS as padding) and saves it the way the official LLaDA
checkpoints are saved (``config.json`` with ``model_type: llada`` and OLMo field names, safetensors
under LLaDA's tensor names), so ``sampler.load_model`` runs it through the native LLaDA path, block
KV cache included.

Each training sequence is the question, ``[SEP]``, then the answer padded with ``[EOS]`` up to the
task's generation length, as in LLaDA's SFT: the model learns to end its answer. The objective is
LLaDA's masked-diffusion loss: per example draw ``t ~ U(eps, 1)``, mask each answer position
(padding included) with probability ``t``, never the prompt, and take the cross-entropy on the
masked positions weighted by ``1 / t`` and normalised by the answer length. AdamW with linear
warm-up and cosine decay. Every example is a fresh problem from the task's seeded training set,
which never holds a held-out question. The folder written by ``--out`` holds the config, the
safetensors weights, the tokenizer and ``training.json`` (settings, final loss, wall time,
hardware); ``--save-every N`` rewrites it every N steps, so a long run can be inspected while it
trains. The same seed gives the same run on the same hardware (the noise is drawn on the CPU).

A long run goes in segments: every ``--save-every`` steps, on SIGTERM / Ctrl-C, and at
``--stop-after N`` the folder also gets ``checkpoint.pt`` (weights, optimiser, noise generator,
loss curve), and the same command with ``--resume`` goes on from it, ending bit-identical to an
uninterrupted run. ``--stop-after N`` leaves the model at step N of the recipe (its schedule still
the one over ``--steps``): a checkpoint named by a command, reproducible like the full run.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import re
import signal
import time
from dataclasses import asdict, dataclass, fields
from itertools import islice
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import ModernBertConfig, ModernBertForMaskedLM, PreTrainedTokenizerFast

from ..atomic import atomic_path, write_text_atomically
from ..native import BidirectionalTransformer, native_config
from . import arith, cot
from .arith import GEN_LENGTH, make_splits
from .problems import Problem
from .tokenizer import build_llada_tokenizer, build_tokenizer, save_tokenizer

__all__ = ["TrainConfig", "CotTrainConfig", "RECIPES", "build_model", "build_llada",
           "llada_config", "llada_state_dict", "encode_batch", "diffusion_loss", "train", "save",
           "resume_problem", "recipe_fields", "probe", "probe_plans", "OPERATIONAL",
           "CHECKPOINT", "main"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (the defaults are ``tiny-arith``'s)."""

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
    resume: bool = False
    """Go on from ``out/checkpoint.pt`` (a run stopped early) instead of starting afresh."""
    eval_every: int = 0
    """Every this many steps (0: never), score the held-out probe (:func:`probe`): the loss on a
    fixed batch of tuning-split problems under fixed masks, how many equation results the model
    gets right from the rest of the chain, and how many of the question's numbers it puts where
    they belong. Logged with the loss; changes nothing trained."""
    stop_after: int = 0
    """Stop after this step (0: at ``steps``), checkpointed as a stop by a signal is: ``out``
    then holds the model at that step of this recipe (its learning-rate schedule still the one
    over ``steps``), and ``--resume`` goes on from there."""


@dataclass(frozen=True)
class CotTrainConfig(TrainConfig):
    """A ``tiny-cot`` run: the native LLaDA architecture on the ``cot`` task. Sized to be trained
    on the project's 2-core CPU machine (about 5 s a step there, 14 hours in all, over several
    sessions with ``--save-every`` and ``--resume``) or in minutes on a GPU; see
    ``sampler/zoo/tiny_cot/README.md``."""

    steps: int = 10000
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 500
    layers: int = 6
    hidden: int = 256
    heads: int = 4
    intermediate: int = 768
    log_every: int = 250
    eval_every: int = 250
    amp: bool = False
    """bfloat16 autocast of the forward pass (CUDA only; the weights and the optimiser stay
    float32)."""
    init_std: float = 0.02
    """Weights ~ N(0, init_std^2); the output projections of the blocks also / sqrt(2 layers)."""
    max_sequence_length: int = 512
    rope_theta: float = 10000.0
    task: str = "cot"


OPERATIONAL = frozenset({"out", "threads", "device", "log_every", "save_every", "resume",
                         "stop_after", "eval_every"})
"""Fields that do not change what a run computes: they may differ when a run is resumed."""

CHECKPOINT = "checkpoint.pt"
"""The resumable state in the output folder (removed once the run is complete)."""

HELP: dict[str, str] = {
    "steps": "optimiser steps of the whole run (the learning-rate schedule spans them)",
    "batch_size": "examples per step (each a fresh problem)",
    "lr": "peak learning rate (AdamW)",
    "min_lr_ratio": "the cosine decay ends at lr x this",
    "warmup": "steps of linear warm-up",
    "weight_decay": "AdamW weight decay (matrices only)",
    "seed": "seed of the weights, the problems and the masking noise",
    "layers": "transformer blocks",
    "hidden": "model width",
    "heads": "attention heads",
    "intermediate": "MLP width",
    "eps": "the mask ratio t is drawn from U(eps, 1)",
    "threads": "CPU threads (torch.set_num_threads)",
    "device": "cpu, cuda, cuda:1, ...",
    "log_every": "print and log the mean loss every N steps",
    "save_every": "write the model and a resumable checkpoint every N steps (0: at the end only)",
    "resume": "go on from --out's checkpoint with the same settings",
    "eval_every": "score the held-out probe (val_loss, arith_acc, copy_acc) every N steps "
                  "(0: never)",
    "stop_after": "stop after step N, checkpointed and resumable (0: run to --steps)",
    "amp": "bfloat16 autocast of the forward pass (CUDA only)",
    "init_std": "standard deviation of the initial weights",
    "max_sequence_length": "positions the saved config declares",
    "rope_theta": "rotary embedding base",
}
"""``--help`` text of each config field (its default is appended)."""

SMOKE = dict(steps=3, batch_size=8, layers=1, hidden=32, heads=2, intermediate=64, warmup=1,
             log_every=1, save_every=0)
"""Overrides for ``--smoke``: a tiny model and a few steps, to check the pipeline in seconds."""


# --------------------------------------------------------------------------------------------
# tiny-arith: ModernBERT
# --------------------------------------------------------------------------------------------

def build_model(cfg: TrainConfig, tokenizer: PreTrainedTokenizerFast) -> ModernBertForMaskedLM:
    """A fresh ModernBERT masked LM sized by ``cfg``, with the tokenizer's special ids."""
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden,
        intermediate_size=cfg.intermediate,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        layer_types=["full_attention"] * cfg.layers,
        global_attn_every_n_layers=1,  # the same, in the field transformers 4 reads instead
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        sep_token_id=tokenizer.sep_token_id,
        cls_token_id=tokenizer.sep_token_id,
        bos_token_id=None,
        mask_token_id=tokenizer.mask_token_id,
    )
    return ModernBertForMaskedLM(config)


# --------------------------------------------------------------------------------------------
# tiny-cot: the native LLaDA architecture, saved as an official LLaDA checkpoint
# --------------------------------------------------------------------------------------------

def llada_config(cfg: CotTrainConfig, tokenizer: PreTrainedTokenizerFast) -> dict[str, Any]:
    """The ``config.json`` of the model: LLaDA-8B's fields (OLMo names) at ``cfg``'s sizes.

    No ``auto_map``: no remote code ships with the model; the native implementation runs it."""
    vocab = len(tokenizer)
    return {
        "model_type": "llada", "architectures": ["LLaDAModelLM"],
        "d_model": cfg.hidden, "n_heads": cfg.heads, "n_kv_heads": cfg.heads,
        "n_layers": cfg.layers, "mlp_hidden_size": cfg.intermediate,
        "embedding_size": vocab, "vocab_size": vocab,
        "max_sequence_length": cfg.max_sequence_length, "rope_theta": cfg.rope_theta,
        "rms_norm_eps": 1e-5, "block_type": "llama", "activation_type": "silu",
        "layer_norm_type": "rms", "layer_norm_with_affine": True, "rope": True,
        "rope_full_precision": True, "alibi": False, "attention_layer_norm": False,
        "input_emb_norm": False, "scale_logits": False, "include_bias": False,
        "include_qkv_bias": False, "weight_tying": False, "attention_dropout": 0.0,
        "residual_dropout": 0.0, "embedding_dropout": 0.0, "init_std": cfg.init_std,
        "mask_token_id": tokenizer.mask_token_id, "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id, "torch_dtype": "float32", "use_cache": False,
    }


LLADA_NAMES: list[tuple[str, str]] = [
    ("embed_tokens.", "model.transformer.wte."),
    ("norm.", "model.transformer.ln_f."),
    ("lm_head.", "model.transformer.ff_out."),
    ("self_attn.q_proj.", "q_proj."),
    ("self_attn.k_proj.", "k_proj."),
    ("self_attn.v_proj.", "v_proj."),
    ("self_attn.o_proj.", "attn_out."),
    ("mlp.gate_proj.", "ff_proj."),
    ("mlp.up_proj.", "up_proj."),
    ("mlp.down_proj.", "ff_out."),
    ("input_layernorm.", "attn_norm."),
    ("post_attention_layernorm.", "ff_norm."),
]
"""Native name part -> LLaDA checkpoint name part: the inverse of ``sampler.native.RENAMES``
(``layers.N.`` becomes ``model.transformer.blocks.N.``). Loading the saved folder checks it."""


def _llada_name(native: str) -> str:
    prefix, rest = "", native
    if native.startswith("layers."):
        _, index, rest = native.split(".", 2)
        prefix = f"model.transformer.blocks.{index}."
    for part, official in LLADA_NAMES:
        if rest.startswith(part):
            return prefix + official + rest[len(part):]
    raise ValueError(f"no LLaDA name for parameter {native!r}")


def llada_state_dict(network: BidirectionalTransformer) -> dict[str, Tensor]:
    """The network's float32 weights under LLaDA's checkpoint names, on the CPU."""
    return {_llada_name(name): value.detach().float().cpu().contiguous()
            for name, value in network.state_dict().items()}


def build_llada(cfg: CotTrainConfig, tokenizer: PreTrainedTokenizerFast) -> BidirectionalTransformer:
    """A fresh native LLaDA network sized by ``cfg`` (read back from its own ``config.json``), with
    normal initialisation: std ``init_std``, the blocks' output projections scaled down by
    ``sqrt(2 * layers)`` (as GPT-2 / OLMo do) so that the residual stream starts small."""
    network = BidirectionalTransformer(native_config(llada_config(cfg, tokenizer)))
    residual = cfg.init_std / math.sqrt(2 * cfg.layers)
    for name, param in network.named_parameters():
        if param.ndim < 2:
            continue  # RMSNorm weights stay 1
        std = residual if name.endswith(("o_proj.weight", "down_proj.weight")) else cfg.init_std
        nn.init.normal_(param, mean=0.0, std=std)
    return network


def _native_positions(attention: Tensor) -> Tensor:
    """Positions counted from each row's first real token, as ``sampler.NativeModel`` counts them."""
    return (attention.long().cumsum(-1) - 1).clamp_min(0)


# --------------------------------------------------------------------------------------------
# recipes: what differs between the two models
# --------------------------------------------------------------------------------------------

class Recipe:
    """A model family + task: its config class, tokenizer, network, logits and saved format."""

    config: ClassVar[type[TrainConfig]]
    gen_length: ClassVar[int]

    def tokenizer(self) -> PreTrainedTokenizerFast:
        raise NotImplementedError

    def build(self, cfg: TrainConfig, tokenizer: PreTrainedTokenizerFast) -> nn.Module:
        raise NotImplementedError

    def describe(self, cfg: TrainConfig, n_params: int, vocab: int) -> str:
        raise NotImplementedError

    def problems(self, cfg: TrainConfig) -> Iterator[Problem]:
        raise NotImplementedError

    def held_out(self, cfg: TrainConfig) -> list[Problem]:
        """The tuning split of the run's seed (never trained on): what :func:`probe` reads."""
        raise NotImplementedError

    def logits(self, cfg: TrainConfig, model: nn.Module, ids: Tensor, attention: Tensor,
               start: int) -> Tensor:
        """(B, L - start, V) logits of the answer span of ``ids`` (B, L), on the model's device."""
        raise NotImplementedError

    def save_model(self, cfg: TrainConfig, model: nn.Module, tokenizer: PreTrainedTokenizerFast,
                   out: Path) -> None:
        raise NotImplementedError

    def summary_extras(self, cfg: TrainConfig, steps_per_second: float) -> dict[str, Any]:
        return {}


class ArithRecipe(Recipe):
    config = TrainConfig
    gen_length = arith.GEN_LENGTH

    def tokenizer(self) -> PreTrainedTokenizerFast:
        return build_tokenizer()

    def build(self, cfg: TrainConfig, tokenizer: PreTrainedTokenizerFast) -> nn.Module:
        return build_model(cfg, tokenizer)

    def describe(self, cfg: TrainConfig, n_params: int, vocab: int) -> str:
        return (f"ModernBERT {cfg.layers}x{cfg.hidden}, {n_params / 1e6:.2f} M parameters, "
                f"vocab {vocab}, gen_length {GEN_LENGTH}")

    def problems(self, cfg: TrainConfig) -> Iterator[Problem]:
        return iter(make_splits(seed=cfg.seed, n_train=cfg.steps * cfg.batch_size)["train"])

    def held_out(self, cfg: TrainConfig) -> list[Problem]:
        return make_splits(seed=cfg.seed, n_train=0)["tune"]

    def logits(self, cfg: TrainConfig, model: nn.Module, ids: Tensor, attention: Tensor,
               start: int) -> Tensor:
        device = model.device
        return model(input_ids=ids.to(device), attention_mask=attention.to(device)).logits[:, start:]

    def save_model(self, cfg: TrainConfig, model: nn.Module, tokenizer: PreTrainedTokenizerFast,
                   out: Path) -> None:
        model.save_pretrained(out)
        save_tokenizer(tokenizer, out)


class CotRecipe(Recipe):
    config = CotTrainConfig
    gen_length = cot.GEN_LENGTH

    def tokenizer(self) -> PreTrainedTokenizerFast:
        return build_llada_tokenizer()

    def build(self, cfg: TrainConfig, tokenizer: PreTrainedTokenizerFast) -> nn.Module:
        return build_llada(cfg, tokenizer)

    def describe(self, cfg: TrainConfig, n_params: int, vocab: int) -> str:
        return (f"LLaDA (native) {cfg.layers}x{cfg.hidden}, {n_params / 1e6:.2f} M parameters, "
                f"vocab {vocab}, gen_length {cot.GEN_LENGTH}")

    def problems(self, cfg: TrainConfig) -> Iterator[Problem]:
        return cot.train_stream(seed=cfg.seed)

    def held_out(self, cfg: TrainConfig) -> list[Problem]:
        return cot.make_splits(seed=cfg.seed, n_train=0)["tune"]

    def logits(self, cfg: TrainConfig, model: nn.Module, ids: Tensor, attention: Tensor,
               start: int) -> Tensor:
        device = model.embed_tokens.weight.device
        ids, attention = ids.to(device), attention.to(device)
        index = torch.arange(start, ids.shape[1], device=device).expand(ids.shape[0], -1)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp):
            logits, _ = model(ids, _native_positions(attention), attention.bool(),
                              logits_index=index)
        return logits

    def save_model(self, cfg: TrainConfig, model: nn.Module, tokenizer: PreTrainedTokenizerFast,
                   out: Path) -> None:
        from safetensors.torch import save_file

        with atomic_path(out / "model.safetensors") as tmp:  # a run stopped mid-save keeps the old
            save_file(llada_state_dict(model), str(tmp), metadata={"format": "pt"})
        config = llada_config(cfg, tokenizer)
        write_text_atomically(out / "config.json", json.dumps(config, indent=2) + "\n")
        save_tokenizer(tokenizer, out)

    def summary_extras(self, cfg: TrainConfig, steps_per_second: float) -> dict[str, Any]:
        if cfg.device.startswith("cuda"):
            hardware = torch.cuda.get_device_name(torch.device(cfg.device))
        else:
            hardware = f"{platform.processor() or platform.machine()}, {cfg.threads} threads"
        return {"task": "cot", "hardware": hardware, "amp": cfg.amp,
                "steps_per_second": round(steps_per_second, 3)}


RECIPES: dict[str, Recipe] = {"arith": ArithRecipe(), "cot": CotRecipe()}
"""``--task`` -> its recipe."""


# --------------------------------------------------------------------------------------------
# the shared training loop
# --------------------------------------------------------------------------------------------

def encode_batch(tokenizer: PreTrainedTokenizerFast, questions: list[str], answers: list[str],
                 gen_length: int = GEN_LENGTH) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Left-padded ``prompt + answer + [EOS]...`` ids, their attention mask, and the answer start.

    Every row ends with exactly ``gen_length`` answer positions, so the answer span is the same
    column range for the whole batch.
    """
    prompts = tokenizer(questions)["input_ids"]
    width = max(len(p) for p in prompts)
    rows, masks = [], []
    for prompt, answer in zip(prompts, answers):
        ans = tokenizer(answer, add_special_tokens=False)["input_ids"]
        if len(ans) > gen_length:
            raise ValueError(f"an answer of {len(ans)} tokens does not fit in gen_length "
                             f"{gen_length}: {answer!r}")
        ans = ans + [tokenizer.eos_token_id] * (gen_length - len(ans))
        pad = width - len(prompt)
        rows.append([tokenizer.pad_token_id] * pad + prompt + ans)
        masks.append([0] * pad + [1] * (len(prompt) + gen_length))
    return torch.tensor(rows), torch.tensor(masks), width


def diffusion_loss(logits_of: Callable[[Tensor, Tensor, int], Tensor], ids: torch.Tensor,
                   attention: torch.Tensor, start: int, mask_id: int, eps: float,
                   generator: torch.Generator) -> torch.Tensor:
    """LLaDA's masked-diffusion loss on the answer span ``ids[:, start:]``; ``logits_of(noisy,
    attention, start)`` runs the model and returns the answer span's logits."""
    batch = ids.shape[0]
    # Stratified draw (one t per slice of [0, 1)): each t is still U(eps, 1), the batch covers
    # the whole range, and the variance of the 1/t-weighted loss drops.
    u = (torch.arange(batch) + torch.rand(batch, generator=generator)) / batch
    t = (eps + (1 - eps) * u[torch.randperm(batch, generator=generator)]).unsqueeze(1)
    masked = torch.zeros_like(ids, dtype=torch.bool)
    masked[:, start:] = torch.rand(batch, ids.shape[1] - start, generator=generator) < t
    noisy = ids.masked_fill(masked, mask_id)
    # the noise is drawn on the CPU, so a run is the same on any device
    logits = logits_of(noisy, attention, start)
    device = logits.device
    target = ids[:, start:].to(device)
    ce = F.cross_entropy(logits.float().transpose(1, 2), target, reduction="none")
    ce = ce * masked[:, start:].to(device) / t.to(device)
    return ce.sum() / (batch * target.shape[1])


PROBE_SIZE = 128
"""Held-out problems the probe scores (the first of the tuning split)."""

_EQUATION = re.compile(r"(\d+)\s*[-+*]\s*(\d+)\s*=\s*(\d+)")
_FINAL = re.compile(r"####\s*(\d+)")


def probe_plans(answer: str) -> dict[str, tuple[list[int], list[list[int]]]]:
    """What each probe of ``answer`` masks and scores: ``{name: (positions to mask, spans to
    score)}``, positions being characters of the answer, which are its tokens (the bundled
    tokenizers are per character).

    - ``arith``: masked, every number the chain computes wherever it stands (an equation's
      result, a later equation's operand that reuses it, the final ``#### N``), so no result can
      be copied from a later line; scored, the results of the equations whose operands both come
      from the question and so stay shown.
    - ``copy``: masked and scored, every operand taken from the question (the results stay shown,
      which also fixes the order of a free-order sum): does the model put the question's numbers
      where they belong.
    """
    computed: set[str] = set()
    arith_masked: list[int] = []
    arith_scored: list[list[int]] = []
    copied: list[list[int]] = []
    for eq in _EQUATION.finditer(answer):
        hidden = [i for i in (1, 2) if eq[i] in computed]
        for i in (1, 2):
            span = list(range(*eq.span(i)))
            if i in hidden:
                arith_masked.extend(span)
            else:
                copied.append(span)
        result = list(range(*eq.span(3)))
        arith_masked.extend(result)
        if not hidden:
            arith_scored.append(result)
        computed.add(eq[3])
    final = _FINAL.search(answer)
    if final and final[1] in computed:
        arith_masked.extend(range(*final.span(1)))
    return {"arith": (arith_masked, arith_scored),
            "copy": ([i for span in copied for i in span], copied)}


def probe(logits_of: Callable[[Tensor, Tensor, int], Tensor], tokenizer: PreTrainedTokenizerFast,
          problems: list[Problem], eps: float, gen_length: int) -> dict[str, float]:
    """Held-out figures of the model behind ``logits_of`` (in eval mode, no gradients):

    - ``val_loss``: :func:`diffusion_loss` on ``problems`` under masks drawn from a fixed seed, so
      the figure moves only with the weights;
    - for tasks whose answers hold equations (and tokenizers with a token per character), one
      pass per probe of :func:`probe_plans`, each scored as the share of its spans whose every
      digit is the top-1 prediction: ``arith_acc``, can the model do the arithmetic of a chain
      whose operands are shown; ``copy_acc``, can it put the question's numbers where they
      belong. A model that copies operands but adds wrongly has a high ``copy_acc``, an
      ``arith_acc`` near 0, and a loss that looks fine.
    """
    ids, attention, start = encode_batch(tokenizer, [p.question for p in problems],
                                         [p.answer for p in problems], gen_length)
    mask_id = tokenizer.mask_token_id
    figures: dict[str, float] = {}
    with torch.no_grad():
        figures["val_loss"] = round(diffusion_loss(
            logits_of, ids, attention, start, mask_id, eps, torch.Generator().manual_seed(0)
        ).item(), 4)
        plans = [probe_plans(p.answer) for p in problems]
        per_character = all(len(tokenizer(p.answer, add_special_tokens=False)["input_ids"])
                            == len(p.answer) for p in problems)
        answer = ids[:, start:]
        for name in ("arith", "copy"):
            rows = [plan[name] for plan in plans]
            if not per_character or not any(scored for _, scored in rows):
                continue
            masked = torch.zeros_like(ids, dtype=torch.bool)
            for row, (positions, _) in enumerate(rows):
                masked[row, [start + i for i in positions]] = True
            guess = logits_of(ids.masked_fill(masked, mask_id), attention, start).argmax(-1).cpu()
            right = [bool((guess[row, span] == answer[row, span]).all())
                     for row, (_, scored) in enumerate(rows) for span in scored]
            figures[f"{name}_acc"] = round(sum(right) / len(right), 4)
    return figures


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up to ``cfg.lr``, then cosine decay to ``cfg.lr * cfg.min_lr_ratio``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _recipe(cfg: TrainConfig) -> Recipe:
    return RECIPES[getattr(cfg, "task", "arith")]


def recipe_fields(cfg: TrainConfig) -> dict[str, Any]:
    """The fields of ``cfg`` that determine what the run computes (all but :data:`OPERATIONAL`)."""
    return {k: v for k, v in asdict(cfg).items() if k not in OPERATIONAL}


def resume_problem(cfg: TrainConfig) -> str | None:
    """Why ``cfg.out`` cannot be resumed with ``cfg`` (one line), or None when it can."""
    out = Path(cfg.out)
    summary = out / "training.json"
    if not (out / CHECKPOINT).is_file() or not summary.is_file():
        return (f"--resume: {out} holds no {CHECKPOINT} to go on from (a run writes one every "
                f"--save-every steps and when stopped); run without --resume to start afresh")
    saved_run = json.loads(summary.read_text())
    saved = saved_run["config"]
    wanted = recipe_fields(cfg)
    differ = sorted(k for k in wanted if saved.get(k) != wanted[k])
    if differ:
        shown = ", ".join(f"--{k.replace('_', '-')} {saved.get(k)} (not {wanted[k]})"
                          for k in differ)
        return (f"--resume: the run in {out} was started with {shown}; resume it with the "
                f"same settings, or write to another --out")
    done = saved_run.get("steps_done", 0)
    if cfg.stop_after and cfg.stop_after <= done:
        return (f"--stop-after {cfg.stop_after}: the run in {out} is at step {done} already; "
                f"give a later step (up to --steps {cfg.steps})")
    return None


class _StopRequest:
    """SIGTERM / Ctrl-C during training: finish the step in flight, checkpoint, then stop."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopRequest":
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: no handlers, the run just cannot be stopped
            self._previous.clear()
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal = signum
        print(f"\n{signal.Signals(signum).name}: stopping after this step (checkpointing)",
              flush=True)

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def train(cfg: TrainConfig) -> dict:
    """Run the training described by ``cfg``; save model and tokenizer to ``cfg.out``.

    With ``cfg.resume`` it goes on from ``cfg.out``'s checkpoint (see the module docstring)."""
    recipe = _recipe(cfg)
    if cfg.resume and (problem := resume_problem(cfg)):
        raise ValueError(problem)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)

    tokenizer = recipe.tokenizer()
    model = recipe.build(cfg, tokenizer).to(cfg.device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"config: {json.dumps(asdict(cfg))}", flush=True)
    print(f"model: {recipe.describe(cfg, n_params, len(tokenizer))}", flush=True)

    problems = recipe.problems(cfg)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "norm" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "norm" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=cfg.lr, betas=(0.9, 0.98))
    first, done_before, log, resumes = 0, 0.0, [], 0
    if cfg.resume:
        state = torch.load(Path(cfg.out) / CHECKPOINT, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        first, done_before, log = state["step"], state["wall_seconds"], state["log"]
        resumes = state["resumes"] + 1
        next(islice(problems, first * cfg.batch_size, first * cfg.batch_size), None)
        print(f"resumed at step {first} ({done_before / 60:.1f} min of training before)",
              flush=True)

    def logits_of(noisy: Tensor, attention: Tensor, start: int) -> Tensor:
        return recipe.logits(cfg, model, noisy, attention, start)

    held_out = recipe.held_out(cfg)[:PROBE_SIZE] if cfg.eval_every else []

    def scored() -> dict[str, float]:
        model.eval()
        try:
            return probe(logits_of, tokenizer, held_out, cfg.eps, recipe.gen_length)
        finally:
            model.train()

    def checkpoint(step: int) -> None:
        Path(cfg.out).mkdir(parents=True, exist_ok=True)
        with atomic_path(Path(cfg.out) / CHECKPOINT) as tmp:  # a kill mid-write keeps the last
            torch.save({"step": step, "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(), "generator": generator.get_state(),
                        "wall_seconds": wall(), "log": log, "resumes": resumes}, tmp)

    def wall() -> float:
        return done_before + time.time() - began

    def saved(step: int) -> dict:
        return save(cfg, model, tokenizer, step, loss_value, wall(), log, resumes)

    model.train()
    began = time.time()
    window, window_start, loss_value, rate = [], time.time(), float("nan"), float("nan")
    with _StopRequest() as stop:
        for step in range(first, cfg.steps):
            lr = learning_rate(cfg, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            chunk = list(islice(problems, cfg.batch_size))
            ids, attention, start = encode_batch(tokenizer, [p.question for p in chunk],
                                                 [p.answer for p in chunk], recipe.gen_length)
            loss = diffusion_loss(logits_of, ids, attention, start, tokenizer.mask_token_id,
                                  cfg.eps, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            window.append(loss.detach())  # read at logging time: no device sync every step
            done = step + 1
            halt = stop.signal is not None or done == cfg.stop_after
            evaluate = bool(cfg.eval_every) and done % cfg.eval_every == 0
            if done % cfg.log_every == 0 or done == cfg.steps or halt or evaluate:
                loss_value = sum(v.item() for v in window) / len(window)
                rate = len(window) / (time.time() - window_start)
                eta = (cfg.steps - done) / rate
                figures = scored() if evaluate else {}
                log.append({"step": done, "loss": round(loss_value, 4), "lr": lr,
                            "wall_seconds": round(wall(), 1), **figures})
                held = "".join(f" {k} {v:.4f}" for k, v in figures.items())
                print(f"step {done:>6}/{cfg.steps} ({100 * done / cfg.steps:5.1f}%) "
                      f"loss {loss_value:.4f}{held} lr {lr:.2e} {rate:.2f} steps/s "
                      f"elapsed {wall() / 60:.1f} min eta {eta / 60:.1f} min", flush=True)
                window, window_start = [], time.time()
            if done < cfg.steps and (halt or (cfg.save_every and done % cfg.save_every == 0)):
                checkpoint(done)
                summary = saved(done)
                model.train()
                if halt:
                    print(f"stopped at step {done}/{cfg.steps}; go on with the same command "
                          f"and --resume", flush=True)
                    return summary

    summary = saved(cfg.steps)
    (Path(cfg.out) / CHECKPOINT).unlink(missing_ok=True)
    print(f"done in {summary['wall_seconds'] / 60:.1f} min, final loss {loss_value:.4f}; "
          f"saved to {cfg.out}", flush=True)
    return summary


def save(cfg: TrainConfig, model: nn.Module, tokenizer: PreTrainedTokenizerFast,
         step: int, loss: float, wall: float, log: list[dict] | None = None,
         resumes: int = 0) -> dict:
    """Write model, tokenizer and ``training.json`` (settings, steps done, loss, wall time over
    every segment of the run, the logged loss curve) to ``cfg.out``."""
    recipe = _recipe(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    recipe.save_model(cfg, model, tokenizer, out)
    summary = {"config": asdict(cfg), "steps_done": step,
               "parameters": sum(p.numel() for p in model.parameters()),
               "final_loss": round(loss, 4), "wall_seconds": round(wall, 1),
               "torch": torch.__version__, "resumes": resumes,
               **recipe.summary_extras(cfg, step / wall if wall > 0 else float("nan"))}
    summary["log"] = log or []
    write_text_atomically(out / "training.json", json.dumps(summary, indent=2) + "\n")
    return summary


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Command-line flags to the ``--task``'s config (``--smoke`` overrides size and step count)."""
    task_parser = argparse.ArgumentParser(add_help=False)
    task_parser.add_argument("--task", choices=sorted(RECIPES), default="arith")
    task = task_parser.parse_known_args(argv)[0].task
    config_class = RECIPES[task].config
    defaults = config_class(out="")

    parser = argparse.ArgumentParser(prog="python -m sampler.zoo.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=sorted(RECIPES), default="arith",
                        help="arith (tiny-arith, ModernBERT) or cot (tiny-cot, native LLaDA)")
    parser.add_argument("--out", required=True, help="folder to write the model into")
    parser.add_argument("--smoke", action="store_true", help="a few steps of a tiny model")
    for f in fields(config_class):
        if f.name in ("out", "task"):
            continue
        value = getattr(defaults, f.name)
        flag = f"--{f.name.replace('_', '-')}"
        text = f"{HELP.get(f.name, '')} (default: %(default)s)".lstrip()
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value,
                                help=HELP.get(f.name))
        else:
            parser.add_argument(flag, type=type(value), default=value, help=text)
    args = vars(parser.parse_args(argv))
    args.pop("task")
    if args.pop("smoke"):
        args.update(SMOKE)
    if args["device"].startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args['device']}: no CUDA device is available; use --device cpu")
    if args.get("amp") and not args["device"].startswith("cuda"):
        parser.error("--amp (bfloat16 autocast) is for CUDA devices; drop it or use --device cuda")
    if not 0 <= args["stop_after"] <= args["steps"]:
        parser.error(f"--stop-after must be a step in 1..--steps ({args['steps']}), or 0 to run "
                     f"to the end; got {args['stop_after']}")
    cfg = config_class(**args)
    if cfg.resume and (problem := resume_problem(cfg)):
        parser.error(problem)
    return cfg


def main(argv: list[str] | None = None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
