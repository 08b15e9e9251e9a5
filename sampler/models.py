"""Model adapters: one small protocol over every kind of masked diffusion LM.

An adapter gives logits aligned so that position i predicts token i, plus the mask / eos / pad ids.
Implementations: any ``AutoModelForMaskedLM`` (incl. the bundled tiny-arith); LLaDA and Dream, run
by the native implementation in :mod:`sampler.native` (no remote code; official checkpoints load
by parameter name; a block KV cache); and, as an explicit opt-in for architectures without a native
implementation, the authors' remote code.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor

from .errors import ModelError
from .native import BlockKVCache, load_native_network

__all__ = ["DiffusionModel", "MaskedLMModel", "NativeModel", "LLaDAModel", "DreamModel",
           "RemoteCodeModel", "ADAPTERS", "load_model", "adapter_for"]


@dataclass(eq=False)
class DiffusionModel:
    """A network with its tokenizer and special ids. Call it: ``model(x, attention_mask) -> logits``
    with x (B, L) long and logits (B, L, V), position i predicting token i."""

    network: torch.nn.Module
    tokenizer: Any
    mask_id: int
    eos_id: int | None
    pad_id: int
    name: str = "unnamed"
    max_length: int | None = None
    kind: ClassVar[str] = "masked_lm"
    logit_shift: ClassVar[bool] = False
    trust_remote_code: ClassVar[bool] = False
    supports_cache: ClassVar[bool] = False
    supports_hidden: ClassVar[bool] = False
    """Whether :meth:`span_hidden` can give the last hidden state (strategies with
    ``needs_hidden``, e.g. ``ni``, need it)."""
    auto_class: ClassVar[str] = "AutoModelForMaskedLM"
    tokenizer_class: ClassVar[str | None] = None

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def weights_fingerprint(self) -> str:
        """A short hash of the weights (the name, shape and first 64 values of every tensor):
        what names this model in study identities and in the provenance of files trained on it
        (indicators, reasoning maps, evaluation tables). Computed afresh at each call, so weights
        changed in place (a merged adapter) get a new one. The values are hashed as loaded, so
        the same checkpoint loaded in float32 and in bfloat16 has two fingerprints (two studies:
        their decodes differ); :meth:`weights_signature` is the same for both."""
        return self._weights_hash(lambda values: values.float())

    def weights_signature(self) -> str:
        """:meth:`weights_fingerprint` with the values rounded to bfloat16 first: the same for a
        checkpoint loaded in float32 or in bfloat16 (a float16 load rounds differently). What a
        trained file (an NI indicator, an EDIT map) records of the model it was trained on, and
        what decoding with it compares, so that the file trained on a GPU in bfloat16 matches the
        same weights on a CPU in float32. Weights that differ by less than bfloat16's resolution
        (a short low-rank fine-tune of the same model) may share a signature: it tells models
        apart, not versions of one."""
        return self._weights_hash(lambda values: values.to(torch.bfloat16).float())

    def _weights_hash(self, cast: Callable[[Tensor], Tensor]) -> str:
        digest = hashlib.sha256()
        for name, tensor in sorted(self.network.state_dict().items()):
            digest.update(f"{name}{tuple(tensor.shape)}".encode())
            digest.update(cast(tensor.detach().flatten()[:64]).cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    def forward(self, x: Tensor, attention_mask: Tensor | None) -> Tensor:
        kwargs = {} if attention_mask is None else {"attention_mask": attention_mask}
        return self.network(input_ids=x, **kwargs).logits

    def __call__(self, x: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        return self.forward(x, attention_mask)

    def span_logits(self, x: Tensor, attention_mask: Tensor | None, start: int) -> Tensor:
        """(B, L - start, V) logits of positions ``start`` onwards: what the loop reads."""
        return self.forward(x, attention_mask)[:, start:]

    def forward_hidden(self, x: Tensor, attention_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """(logits (B, L, V), last hidden state (B, L, D)) of one pass, aligned like the logits:
        transformers' ``hidden_states[-1]`` (``output_hidden_states=True``)."""
        kwargs = {} if attention_mask is None else {"attention_mask": attention_mask}
        out = self.network(input_ids=x, output_hidden_states=True, **kwargs)
        return out.logits, out.hidden_states[-1]

    def span_hidden(self, x: Tensor, attention_mask: Tensor | None, start: int
                    ) -> tuple[Tensor, Tensor]:
        """:meth:`span_logits` and the last hidden state of the same positions, from one pass:
        what the loop reads for a strategy that asks for hidden states (only then: the plain
        :meth:`span_logits` never collects them)."""
        logits, hidden = self.forward_hidden(x, attention_mask)
        return logits[:, start:], hidden[:, start:]


class MaskedLMModel(DiffusionModel):
    """Any ``AutoModelForMaskedLM`` (BERT, ModernBERT, the bundled tiny-arith, ...)."""

    supports_hidden = True


class NativeModel(DiffusionModel):
    """A model run by the native implementation (:mod:`sampler.native`): no remote code, and a
    block KV cache (``cache = "prefix" | "dual"``, see :meth:`cached_logits`).

    Positions are counted from each row's first real token (left padding gets position 0 and is
    never attended to), so a padded row gives the logits it would give alone.
    """

    supports_cache = True
    supports_hidden = True
    auto_class = ""

    def _inputs(self, attention_mask: Tensor | None, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """(positions (B, L), key mask (B, L) bool or None)."""
        if attention_mask is None:
            return torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1), None
        keep = attention_mask.bool()
        return (attention_mask.long().cumsum(-1) - 1).clamp_min(0), keep

    def _shift(self, raw: Tensor) -> Tensor:
        return torch.cat([raw[:, :1], raw[:, :-1]], dim=1) if self.logit_shift else raw

    def forward(self, x: Tensor, attention_mask: Tensor | None) -> Tensor:
        positions, keep = self._inputs(attention_mask, x)
        return self._shift(self.network(x, positions, keep)[0])

    def forward_hidden(self, x: Tensor, attention_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        positions, keep = self._inputs(attention_mask, x)
        logits, _, hidden = self.network(x, positions, keep, output_hidden=True)
        return self._shift(logits), self._shift(hidden)

    def _span_index(self, x: Tensor, start: int) -> Tensor:
        """(B, L - start) indices of the outputs that give positions ``start`` onwards (with
        shifted logits the output one position earlier; position 0 reads output 0, as
        :meth:`_shift` does)."""
        shift = int(self.logit_shift)
        index = torch.arange(start - shift, x.shape[1] - shift, device=x.device).clamp_min(0)
        return index.expand(x.shape[0], -1)

    def span_logits(self, x: Tensor, attention_mask: Tensor | None, start: int) -> Tensor:
        """(B, L - start, V) logits of positions ``start`` onwards, the output head applied to
        those positions only: the prompt's logits (B x prompt x 126k for LLaDA) are never made."""
        positions, keep = self._inputs(attention_mask, x)
        return self.network(x, positions, keep, logits_index=self._span_index(x, start))[0]

    def span_hidden(self, x: Tensor, attention_mask: Tensor | None, start: int
                    ) -> tuple[Tensor, Tensor]:
        positions, keep = self._inputs(attention_mask, x)
        logits, _, hidden = self.network(x, positions, keep, output_hidden=True,
                                         logits_index=self._span_index(x, start))
        return logits, hidden

    def full_logits(self, x: Tensor, attention_mask: Tensor | None, start: int, *,
                    hidden: bool = False) -> tuple[Tensor, ...]:
        """A full pass: (B, L - start, V) logits of positions ``start`` onwards, and the keys and
        values of every position (the cache of the block that starts now); with ``hidden`` a
        third item, the last hidden state (B, L - start, D) of the same positions."""
        positions, keep = self._inputs(attention_mask, x)
        return self.network(x, positions, keep, collect=True,
                            logits_index=self._span_index(x, start), output_hidden=hidden)

    def cached_logits(self, cache: BlockKVCache, x: Tensor, attention_mask: Tensor | None,
                      block_start: Tensor, block_length: int, mode: str, *,
                      hidden: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """(B, block_length, V) logits of each row's block ``[block_start, + block_length)`` (column
        indices into x), from a pass over only the block (``dual``: every other position's keys
        and values come from the cache) or over the block and everything after it (``prefix``:
        the positions before the block come from the cache), as in Fast-dLLM. With shifted logits
        the queries start one position earlier, at the output that predicts the block's first
        token. With ``hidden``: (logits, last hidden state (B, block_length, D))."""
        positions, _ = self._inputs(attention_mask, x)
        shift = int(self.logit_shift)
        first = block_start - shift
        span = block_length if mode == "dual" else int((x.shape[1] - first).max())
        query = (first[:, None] + torch.arange(span, device=x.device)).clamp_max(x.shape[1] - 1)
        out = torch.arange(block_length, device=x.device).expand(x.shape[0], -1)
        outputs = self.network(x.gather(1, query), positions.gather(1, query), cache=cache,
                               query_index=query, logits_index=out, output_hidden=hidden)
        return (outputs[0], outputs[2]) if hidden else outputs[0]


class LLaDAModel(NativeModel):
    """LLaDA-8B-Base / -Instruct, LLaDA-1.5: the native implementation; position i predicts
    token i."""

    kind = "llada"


class DreamModel(NativeModel):
    """Dream-v0-Base / -Instruct-7B: the native implementation; its output i predicts token i + 1,
    so the adapter shifts right."""

    kind = "dream"
    logit_shift = True
    tokenizer_class = "Qwen2TokenizerFast"  # what Dream's remote DreamTokenizer is built on


class RemoteCodeModel(DiffusionModel):
    """An architecture without a native implementation, run by the authors' remote code (explicit
    opt-in: ``load_model(..., trust_remote_code=True)``). ``model(x, attention_mask=...).logits``,
    position i predicting token i; no block cache."""

    kind = "remote_code"
    trust_remote_code = True
    auto_class = "AutoModel"


ADAPTERS: dict[str, type[DiffusionModel]] = {
    cls.kind: cls for cls in (MaskedLMModel, LLaDAModel, DreamModel, RemoteCodeModel)
}
_MODEL_TYPES = {"llada": "llada", "dream": "dream"}  # config.model_type (lower-cased) -> adapter


def adapter_for(model_type: str | None, forced: str | None = None, *,
                trust_remote_code: bool = False) -> type[DiffusionModel]:
    """The adapter class for a config's ``model_type``, or the one named by ``forced``.

    LLaDA and Dream always take the native implementation; other model types take the masked-LM
    adapter, or the authors' remote code when ``trust_remote_code`` opts in to it.
    """
    if forced is not None:
        if not isinstance(forced, str) or forced not in ADAPTERS:
            raise ModelError(f"unknown model adapter {forced!r}; known adapters: "
                             f"{', '.join(sorted(ADAPTERS))}.")
        return ADAPTERS[forced]
    kind = _MODEL_TYPES.get((model_type or "").lower())
    if kind is None:
        kind = "remote_code" if trust_remote_code else "masked_lm"
    return ADAPTERS[kind]


def _raw_config(path: str) -> dict[str, Any]:
    """The config.json of a local folder or hub id as a plain dict, without running remote code."""
    local = Path(path) / "config.json"
    if local.is_file():
        try:
            config = json.loads(local.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise ModelError(f"{local} is not valid JSON ({err.__class__.__name__}); restore the "
                             "model's config.json.") from None
        if not isinstance(config, dict):
            raise ModelError(f"{local} must hold a JSON object, got {type(config).__name__}.")
        return config
    if Path(path).is_dir():
        raise ModelError(f"model folder {path!r} has no config.json.")
    from transformers import PretrainedConfig

    try:
        config, _ = PretrainedConfig.get_config_dict(path, local_files_only=_cached_only(path))
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot find model {path!r}: not a bundled name, a local folder with a "
                         f"config.json, or a reachable hub id ({err.__class__.__name__}).") from None
    return config


def _local_folder(path: str) -> Path:
    """A local folder with the checkpoint of ``path`` (a folder already, or a hub id downloaded,
    or read from the hub's local cache when the hub cannot be reached)."""
    if Path(path).is_dir():
        return Path(path)
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja"]
    try:
        return Path(snapshot_download(path, allow_patterns=patterns,
                                      local_files_only=_cached_only(path)))
    except ModelError:
        raise
    except Exception as err:  # the hub client raises many kinds; all mean "not reachable"
        raise ModelError(f"cannot download model {path!r} from the hub "
                         f"({err.__class__.__name__}); pass a local folder instead.") from None


_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def _hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the Hugging Face hub cannot be reached now, or None if it can: an offline variable is
    set, or one TCP connection to the hub (through the HTTPS proxy if one is set) failed. One
    quick try: the hub client's own retries take half a minute to say the same."""
    import socket
    import urllib.parse
    import urllib.request

    from huggingface_hub import constants

    for name in _OFFLINE_VARIABLES:
        if os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return f"{name} is set"
    endpoint = urllib.parse.urlsplit(constants.ENDPOINT)
    target = endpoint
    proxy = urllib.request.getproxies().get(endpoint.scheme)
    if proxy and not urllib.request.proxy_bypass(endpoint.hostname or ""):
        target = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        socket.create_connection((target.hostname, port), timeout=timeout).close()
    except (OSError, ValueError):
        return f"{target.hostname}:{port} cannot be reached"
    return None


def _cached_only(path: str) -> bool:
    """Whether hub id ``path`` must be read from the hub's local cache: False when the hub can be
    reached (or ``path`` is no hub id, for the caller to refuse), True when it cannot but the model
    is cached; a one-line ``ModelError`` saying what to do when neither."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(path)
    except HFValidationError:
        return False
    reason = _hub_unreachable()
    if reason is None:
        return False
    if isinstance(try_to_load_from_cache(path, "config.json"), str):
        return True
    from . import zoo

    bundled = [name for name, folder in zoo.BUNDLED_MODELS.items()
               if (folder / "config.json").is_file()]
    raise ModelError(
        f"cannot find model {path!r}: not a local folder, not in the hub's cache, and the hub "
        f"cannot be reached to download it ({reason}); give a local folder with its checkpoint "
        f"(tuner: --model DIR), a bundled model ({', '.join(bundled)}), or run where the hub is "
        "reachable (an 8B model also needs a GPU).")


def _device_and_dtype(device: str | torch.device | None, dtype: torch.dtype | str | None,
                      cls: type[DiffusionModel]) -> tuple[torch.device, torch.dtype]:
    try:
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except (RuntimeError, TypeError) as err:
        raise ModelError(f"unknown device {device!r} ({err}); use 'cpu', 'cuda' or 'cuda:N'.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {str(device)!r} asked for, but this machine has no CUDA GPU "
                         "(or torch was built without CUDA); use device='cpu'.")
    if isinstance(dtype, str):
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ModelError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16.")
        dtype = getattr(torch, dtype)
    if dtype is None:  # big models in bfloat16 on a GPU; small ones and CPUs in float32
        dtype = torch.bfloat16 if (device.type == "cuda" and cls.kind != "masked_lm") else torch.float32
    return device, dtype


def _tokenizer(folder: str, cls: type[DiffusionModel], config: dict[str, Any]) -> Any:
    import transformers

    # A native model's type (llada, dream) is unknown to transformers without remote code: hand
    # AutoTokenizer the config already read, or it warns on every load while guessing one.
    known = None
    if issubclass(cls, NativeModel):  # only what the tokenizer lookup reads (no config checks)
        known = transformers.PretrainedConfig(
            **{k: config[k] for k in ("model_type", "tokenizer_class") if k in config})
    try:
        return transformers.AutoTokenizer.from_pretrained(
            folder, trust_remote_code=cls.trust_remote_code, config=known)
    except (OSError, ValueError, KeyError) as err:
        if cls.tokenizer_class is None:
            raise ModelError(f"cannot load the tokenizer of {folder!r}: {err}") from None
    # e.g. Dream names a remote tokenizer class; its files are those of the class it builds on
    try:
        return getattr(transformers, cls.tokenizer_class).from_pretrained(folder)
    except (OSError, ValueError, KeyError) as err:
        raise ModelError(f"cannot load the tokenizer of {folder!r} as "
                         f"{cls.tokenizer_class}: {err}") from None


def _network(cls: type[DiffusionModel], path: str, config: dict[str, Any], display: str,
             device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    import transformers

    if issubclass(cls, NativeModel):
        return load_native_network(Path(path), config, device=device, dtype=dtype, family=cls.kind)
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()  # its "Loading weights" bar, on every load
    try:
        network = getattr(transformers, cls.auto_class).from_pretrained(
            path, trust_remote_code=cls.trust_remote_code, dtype=dtype)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot load model {display!r} as {cls.kind}: {err}") from None
    except Exception as err:  # remote code written for another transformers release
        if not cls.trust_remote_code:
            raise
        raise ModelError(
            f"the remote code of {display!r} fails under transformers {transformers.__version__} "
            f"({err.__class__.__name__}: {err}); such code usually needs transformers 4.57.x "
            "(pip install 'transformers==4.57.6').") from None
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    return network.to(device).eval()


def _special_id(name: str, config: dict[str, Any], tokenizer: Any) -> int | None:
    value = config.get(f"{name}_token_id")
    if value is None:
        value = getattr(tokenizer, f"{name}_token_id", None)
    if isinstance(value, list):
        value = value[0] if value else None
    return value


def _resolve_path(name_or_path: str | os.PathLike) -> tuple[str, str]:
    """(path, display name) for a bundled short name, a local folder, or a hub id."""
    from . import zoo

    name = str(name_or_path)
    if name in zoo.BUNDLED_MODELS:
        return str(zoo.bundled_path(name)), name
    return name, name


def load_model(name_or_path: str | os.PathLike, *, device: str | torch.device | None = None,
               dtype: torch.dtype | str | None = None, adapter: str | None = None,
               trust_remote_code: bool = False) -> DiffusionModel:
    """Load a diffusion LM and its tokenizer behind the adapter its config calls for.

    ``name_or_path``: a bundled short name (``"tiny-arith"``), a local folder, or a hub id.
    LLaDA and Dream checkpoints load into the native implementation (no remote code). ``device``
    defaults to CUDA when available; ``dtype`` to bfloat16 on CUDA for LLaDA / Dream / remote
    code and float32 otherwise. ``adapter`` forces one of :data:`ADAPTERS`;
    ``trust_remote_code`` opts in to the authors' code for architectures without a native
    implementation.
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path):
        raise ModelError(f"load_model takes a bundled model name, a local folder or a hub id, got "
                         f"{type(name_or_path).__name__} {name_or_path!r}.")
    if dtype is not None and not isinstance(dtype, (str, torch.dtype)):
        raise ModelError(f"`dtype` must be a torch.dtype or its name (e.g. 'bfloat16'), got "
                         f"{type(dtype).__name__}.")
    path, display = _resolve_path(name_or_path)
    config = _raw_config(path)
    cls = adapter_for(config.get("model_type"), adapter, trust_remote_code=trust_remote_code)
    device, dtype = _device_and_dtype(device, dtype, cls)
    if issubclass(cls, NativeModel):
        from .native import native_config

        native_config(config, cls.kind)  # refuse an unsupported config before any download
        path = str(_local_folder(path))
    network = _network(cls, path, config, display, device, dtype)
    tokenizer = _tokenizer(path, cls, config)
    mask_id = _special_id("mask", config, tokenizer)
    if mask_id is None:
        raise ModelError(f"model {display!r} defines no mask token (neither config.mask_token_id "
                         "nor tokenizer.mask_token_id): it is not a masked diffusion LM.")
    eos_id = _special_id("eos", config, tokenizer)
    pad_id = _special_id("pad", config, tokenizer)
    max_length = (config.get("max_position_embeddings") or config.get("max_sequence_length"))
    return cls(network=network, tokenizer=tokenizer, mask_id=int(mask_id),
               eos_id=None if eos_id is None else int(eos_id),
               pad_id=int(pad_id if pad_id is not None else (eos_id if eos_id is not None else 0)),
               name=display, max_length=max_length)
