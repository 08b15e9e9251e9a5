"""LoRA fine-tuning that keeps EDIT's reasoning map (``tuner finetune-edit``).

EDIT (arXiv 2512.00670, code louisYen/EDIT) fine-tunes a diffusion LM with LoRA adapters on the
attention's Q/K/V projections and keeps AdamW's statistics of those adapters as a *reasoning map*
that its early-termination rule (:class:`sampler.strategies.Edit`) reads at decoding time. This
module runs that fine-tune on a task's **training** data and writes, into one output folder:

* ``adapter/``: the LoRA adapter (``peft``'s ``save_pretrained``: ``adapter_config.json`` and
  ``adapter_model.safetensors``), loadable with ``peft.PeftModel.from_pretrained`` over the base
  network;
* ``model/``: the base model with the adapter merged, in the base model's own format, so that
  ``sampler.load_model(OUT/model)`` and ``tuner ... --model OUT/model`` decode with it;
* ``reasoning_map.safetensors``: the map (:class:`sampler.edit_map.ReasoningMap`) with the base
  model's name and fingerprint, the task, the training data's hash and the run's settings;
* ``edit.json``: the same provenance, the map's SHA-256, the loss and the wall time, and the
  ``edit`` params that reference the map (``map`` + ``map_sha256``).

What follows the authors: LoRA on ``q_proj`` / ``k_proj`` / ``v_proj`` (with ``peft``), AdamW, the
map as the mean over optimiser steps 2..N of ``exp_avg / (sqrt(exp_avg_sq) + eps)`` of every
adapter matrix (their callback saves the optimiser state at every step and ``eval/utils.py``
averages it), of which decoding reads the ``lora_B`` means. What is this project's: the objective
is the repo's own masked-diffusion loss (:func:`sampler.zoo.train.diffusion_loss`: t ~ U(0, 1)
over the answer, loss on masked positions weighted 1/t; the authors use LLaDA's SFT loss, the same
objective), the batches are :func:`sampler.zoo.train.encode_batch`'s, the learning rate is
constant (a short run), and models with a fused QKV projection (ModernBERT's ``Wqkv``, the
bundled tiny-arith) get one adapter on it, whose activation covers Q, K and V together. Only
``llada`` (native) and masked-LM models are written back; Dream's checkpoint names are not.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

import sampler
from sampler import SamplerError
from sampler.artifacts import file_sha256
from sampler.edit_map import MAP_FILE, MapModule, ReasoningMap

from .errors import UsageError
from .tasks import Example, get_task, hash_examples
from .tasks.zoo import ZooTask

__all__ = ["EditTrainConfig", "finetune_edit", "check_edit_inputs", "target_modules",
           "QKV_NAMES"]

QKV_NAMES = (("q_proj", "k_proj", "v_proj"), ("Wqkv",), ("query", "key", "value"))
"""Names of attention input projections, per family (native LLaDA / Dream, ModernBERT, BERT):
the first family found in a network is adapted."""


@dataclass(frozen=True)
class EditTrainConfig:
    """One fine-tune. The defaults suit the bundled models on 2 CPU cores (a few minutes); the
    authors fine-tune LLaDA-8B with rank 128, alpha 256, dropout 0.05."""

    task: str
    out: str
    model: str | None = None
    steps: int = 200
    batch_size: int = 16
    lr: float = 1e-3
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    weight_decay: float = 0.0
    eps: float = 1e-3
    """Smallest mask ratio t of the diffusion loss."""
    seed: int = 0
    device: str | None = None
    threads: int | None = None

    def check(self) -> None:
        for name, value, low in (("steps", self.steps, 2), ("batch_size", self.batch_size, 1),
                                 ("rank", self.rank, 1)):
            if value < low:
                raise UsageError(f"--{name.replace('_', '-')} must be >= {low}, got {value}.")
        if not (self.lr > 0 and self.alpha > 0 and 0 <= self.dropout < 1
                and self.weight_decay >= 0 and 0 < self.eps < 1):
            raise UsageError("need lr > 0, alpha > 0, 0 <= dropout < 1, weight decay >= 0 and "
                             "0 < eps < 1.")


def target_modules(network: nn.Module) -> tuple[str, ...]:
    """The attention input projections to adapt (module name suffixes, see :data:`QKV_NAMES`)."""
    names = {name.rsplit(".", 1)[-1] for name, module in network.named_modules()
             if isinstance(module, nn.Linear)}
    for family in QKV_NAMES:
        if set(family) <= names:
            return family
    raise UsageError("the model has no attention projection named q_proj/k_proj/v_proj, Wqkv or "
                     "query/key/value to adapt; EDIT needs one.")


def _check_output(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not an empty folder; give a new folder (-o).")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"folder {parent} does not exist; create it first.")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write into {parent}: permission denied.")


def check_edit_inputs(cfg: EditTrainConfig) -> ZooTask:
    """Refuse, before any model is loaded or anything written, what cannot work: bad numbers, an
    unknown task, a task without a training generator, an output that exists or cannot be
    written. Returns the task."""
    cfg.check()
    try:
        import peft  # noqa: F401
    except ImportError:
        raise UsageError("finetune-edit needs peft: pip install 'less-tuner[edit]' (from a "
                         "checkout: pip install -e '.[edit]').") from None
    task = get_task(cfg.task)
    if not isinstance(task, ZooTask):
        raise UsageError(f"task {cfg.task!r} has no training split here (only the tuning and "
                         f"held-out sets); fine-tune on a task with a generator: "
                         f"{', '.join(_trainable_tasks())}.")
    _check_output(Path(cfg.out))
    return task


def _trainable_tasks() -> list[str]:
    from .tasks import TASKS

    return sorted(name for name, task in TASKS.items() if isinstance(task, ZooTask))


def _training_problems(task: ZooTask, n: int) -> list[Any]:
    """The first ``n`` problems of the task's training stream (disjoint from its held-out sets)."""
    return task.module.make_splits(seed=task.seed, n_train=n)["train"]


class _MapAccumulator:
    """Running sum over optimiser steps of AdamW's update direction of every adapter matrix."""

    def __init__(self, params: dict[str, nn.Parameter]) -> None:
        self.params = params
        self.sums = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in params.items()}
        self.count = 0

    def add(self, optimizer: torch.optim.AdamW) -> None:
        eps = optimizer.param_groups[0]["eps"]
        for name, param in self.params.items():
            state = optimizer.state[param]
            self.sums[name] += state["exp_avg"].float() / (state["exp_avg_sq"].float().sqrt() + eps)
        self.count += 1

    def mean(self, name: str) -> Tensor:
        return self.sums[name] / max(1, self.count)


def _adapter_tensors(peft_model: nn.Module) -> dict[str, dict[str, nn.Parameter]]:
    """Network-relative module name -> {"A": lora_A weight, "B": lora_B weight}."""
    found: dict[str, dict[str, nn.Parameter]] = {}
    for name, param in peft_model.named_parameters():
        for key, part in (("A", ".lora_A.default.weight"), ("B", ".lora_B.default.weight")):
            if name.endswith(part):
                module = name[: -len(part)].removeprefix("base_model.model.")
                found.setdefault(module, {})[key] = param
    return found


def _save_merged(model: sampler.DiffusionModel, source: str, folder: Path) -> None:
    """The merged network in the base model's format: a native LLaDA checkpoint (config and
    tokenizer files copied from the base folder) or a transformers masked-LM folder."""
    folder.mkdir()
    if model.kind == "llada":
        from safetensors.torch import save_file

        from sampler.zoo.train import llada_state_dict

        for item in Path(source).iterdir():
            if item.is_file() and not item.name.startswith("model") and item.suffix != ".bin":
                shutil.copy2(item, folder / item.name)
        save_file(llada_state_dict(model.network), str(folder / "model.safetensors"),
                  metadata={"format": "pt"})
    else:
        import transformers

        transformers.utils.logging.disable_progress_bar()  # its "Writing model shards" bar
        try:
            model.network.save_pretrained(folder)
        finally:
            transformers.utils.logging.enable_progress_bar()
        from sampler.zoo.tokenizer import save_tokenizer

        save_tokenizer(model.tokenizer, folder)


def _usual_permissions(folder: Path) -> None:
    """mkdtemp and safetensors create owner-only entries; give them the umask's usual modes."""
    mask = os.umask(0)
    os.umask(mask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def finetune_edit(cfg: EditTrainConfig, *, progress: Callable[[int, int, float], Any] | None = None
                  ) -> dict[str, Any]:
    """Run the fine-tune of ``cfg`` and write its folder (see the module docstring); returns the
    summary written to ``edit.json``. ``progress(step, steps, loss)`` after every step.
    Everything is written into a temporary folder first and moved into place at the end, so a
    failed or interrupted run leaves nothing behind."""
    from peft import LoraConfig, get_peft_model

    from sampler.models import _resolve_path
    from sampler.zoo.train import diffusion_loss, encode_batch

    task = check_edit_inputs(cfg)
    model_name = cfg.model or task.default_model
    try:
        model = sampler.load_model(model_name, device=cfg.device, dtype=torch.float32)
    except SamplerError as err:
        raise UsageError(str(err)) from None
    if model.kind not in ("llada", "masked_lm"):
        raise UsageError(f"finetune-edit writes back native LLaDA and masked-LM models; model "
                         f"{model_name!r} is {model.kind}.")
    families = target_modules(model.network)
    fingerprint = model.weights_fingerprint()

    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    problems = _training_problems(task, cfg.steps * cfg.batch_size)
    examples = [Example(id=f"train-{i}", prompt=p.question, answer=p.answer)
                for i, p in enumerate(problems)]

    network = model.network
    peft_model = get_peft_model(network, LoraConfig(
        r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=list(families),
        bias="none"))
    adapters = _adapter_tensors(peft_model)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    accumulate = _MapAccumulator({name: parts["B"] for name, parts in adapters.items()})
    tokenizer, gen_length = model.tokenizer, task.gen_length

    def logits_of(noisy: Tensor, attention: Tensor, start: int) -> Tensor:
        device = model.device
        return model.span_logits(noisy.to(device), attention.to(device), start)

    began, losses = time.time(), []
    try:
        peft_model.train()
        for step in range(cfg.steps):
            chunk = problems[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            ids, attention, start = encode_batch(tokenizer, [p.question for p in chunk],
                                                 [p.answer for p in chunk], gen_length)
            loss = diffusion_loss(logits_of, ids, attention, start, model.mask_id, cfg.eps,
                                  generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            if step >= 1:  # the authors average from the second optimiser step on
                accumulate.add(optimizer)
            losses.append(loss.item())
            if progress is not None:
                progress(step + 1, cfg.steps, losses[-1])
        peft_model.eval()
        wall = time.time() - began

        reasoning_map = ReasoningMap(
            modules={name: MapModule(parts["A"].detach().float().cpu().clone(),
                                     parts["B"].detach().float().cpu().clone(),
                                     accumulate.mean(name).cpu())
                     for name, parts in adapters.items()},
            meta={"base_model": model_name, "base_fingerprint": fingerprint, "task": cfg.task,
                  "data_hash": hash_examples(examples), "train_examples": len(examples),
                  "steps": cfg.steps, "aggregated_steps": accumulate.count, "rank": cfg.rank,
                  "alpha": cfg.alpha, "lr": cfg.lr, "seed": cfg.seed,
                  "target_modules": list(families)})

        out = Path(cfg.out)
        staging = Path(tempfile.mkdtemp(prefix=".finetune-edit-", dir=out.parent or Path(".")))
        try:
            peft_model.save_pretrained(str(staging / "adapter"))
            peft_model.merge_and_unload()  # merges into `network` in place
            _save_merged(model, _resolve_path(model_name)[0], staging / "model")
            merged = model.weights_fingerprint()  # the adapter merged in place: new weights
            # the map belongs to the merged model: decoding with other weights warns
            reasoning_map.meta.update(model=str((out / "model").resolve()),
                                      model_signature=model.weights_signature())
            reasoning_map.save(staging / MAP_FILE)
            map_sha = file_sha256(staging / MAP_FILE)
            summary = {
                "config": asdict(cfg), "base_model": model_name, "base_fingerprint": fingerprint,
                "model_fingerprint": merged, "task": cfg.task,
                "data_hash": reasoning_map.meta["data_hash"], "train_examples": len(examples),
                "target_modules": list(families), "map_file": MAP_FILE, "map_sha256": map_sha,
                "map_values": reasoning_map.numel(),
                "model_values": sum(p.numel() for p in network.parameters()),
                "first_loss": round(sum(losses[:10]) / len(losses[:10]), 4),
                "final_loss": round(sum(losses[-10:]) / len(losses[-10:]), 4),
                "wall_seconds": round(wall, 1), "threads": torch.get_num_threads(),
                "device": str(model.device), "torch": torch.__version__,
                "edit_params": {"map": str((out / MAP_FILE).resolve()), "map_sha256": map_sha},
            }
            (staging / "edit.json").write_text(json.dumps(summary, indent=2) + "\n")
            _usual_permissions(staging)
            if out.exists():
                out.rmdir()  # empty (checked): replaced by the finished folder
            staging.rename(out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    finally:
        torch.set_num_threads(threads)
    return summary
