"""What a study measures with: the model, the task and its splits, and one evaluator per split.

An :class:`Evaluation` is built from a spec and touches no storage; a
:class:`~tuner.study.StudyRunner` owns one, as do ``tuner eval`` and the dashboard's decode.
"""

from __future__ import annotations

from functools import cached_property

import sampler
from sampler import DiffusionModel, SamplerError

from .cache import DEFAULT_BYTES, LogitsCache
from .engine import Evaluator
from .errors import TunerError, UsageError
from .spec import StudySpec
from .tasks import Example, Task, get_task, hash_examples

__all__ = ["Evaluation"]


class Evaluation:
    """The model, task, examples and evaluators of one spec.

    With ``reuse`` the evaluators share one :class:`~tuner.cache.LogitsCache` (forward passes
    reused across the trials of a study; exact), bounded by ``cache_bytes``.
    """

    def __init__(self, spec: StudySpec, *, device: str | None = None,
                 model: DiffusionModel | None = None, cache_bytes: int = DEFAULT_BYTES,
                 reuse: bool = True) -> None:
        self.spec = spec
        self.task: Task = get_task(spec.task, data_dir=spec.data) if spec.data else get_task(spec.task)
        self.device = device
        self._model = model
        self.cache = LogitsCache(cache_bytes) if reuse else None
        self._evaluators: dict[tuple[str, bool], Evaluator] = {}

    @property
    def model_name(self) -> str:
        """The spec's model, or the task's default."""
        return self.spec.model or self.task.default_model

    @cached_property
    def model(self) -> DiffusionModel:
        if self._model is not None:
            return self._model
        try:
            return sampler.load_model(self.model_name, device=self.device)
        except SamplerError as err:
            raise TunerError(str(err)) from None

    def examples(self, split: str) -> list[Example]:
        """The spec's ``n_tune`` / ``n_test`` first examples of ``split``."""
        return self.task.examples(split, self.spec.n_tune if split == "tune" else self.spec.n_test)

    @cached_property
    def data_hash(self) -> str:
        """The content hash of the tuning examples (it names the data in identity and provenance)."""
        return hash_examples(self.examples("tune"))

    @cached_property
    def model_fingerprint(self) -> str:
        """The model's :meth:`~sampler.DiffusionModel.weights_fingerprint`: a retrained model
        under the same name gets new baselines and cannot resume an old study."""
        return self.model.weights_fingerprint()

    def evaluator(self, split: str, *, reuse: bool = True) -> Evaluator:
        """The evaluator of ``split``; with ``reuse`` (and an evaluation built with reuse) it
        shares the forward-pass cache, without it every forward pass runs (honest timings)."""
        key = (split, reuse and self.cache is not None)
        if key not in self._evaluators:
            self._evaluators[key] = Evaluator(
                self.model, self.task, self.examples(split), self.spec.decoding,
                batch_size=self.spec.batch_size, cache=self.cache if key[1] else None)
        return self._evaluators[key]

    def check_fits(self, split: str) -> None:
        """Refuse, before anything runs or is written, a split whose longest prompt plus
        ``gen_length`` does not fit the model's positions."""
        model, length = self.model, self.evaluator(split).prompt_length
        gen = self.spec.decoding.gen_length
        if model.max_length is not None and length + gen > model.max_length:
            raise UsageError(f"the {split} split's longest prompt ({length} tokens) + gen_length "
                             f"({gen}) = {length + gen} exceeds the {model.max_length} positions "
                             f"of model {self.model_name!r}: use a model with a longer context "
                             f"(--model)" + (", or shorter generations (--gen-length)."
                                             if length < model.max_length else "."))
