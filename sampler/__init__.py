"""sampler: decode masked diffusion LMs with LESS and the baseline samplers, one loop for all.

    import sampler
    model = sampler.load_model("tiny-arith")
    out = sampler.generate(model, input_ids, profile=sampler.load_profile("arith.json"))
"""

from __future__ import annotations

from .artifacts import ModelMismatchWarning, check_artifact, file_sha256
from .edit_map import ReasoningMap
from .errors import ConfigError, ModelError, NumericalError, ProfileError, SamplerError
from .generate import DEFAULT_STRATEGY, ProfileMismatchWarning, generate
from .indicator import Indicator, IndicatorConfig, IndicatorFile, load_indicator, save_indicator
from .loop import denoise
from .models import (ADAPTERS, DiffusionModel, DreamModel, LLaDAModel, MaskedLMModel, NativeModel,
                     RemoteCodeModel, load_model)
from .output import CAUSES, GenerateOutput, Trace
from .profile import ModelInfo, Profile, Provenance, load_profile, save_profile
from .settings import CACHE_MODES, DecodingSettings
from .space import ChoiceDim, FloatDim, IntDim, SearchSpace
from .stats import StatsTracker, StepStats, js_divergence
from .step import StepDecision, decide
from .strategies import (STRATEGIES, GenerationContext, Selection, Strategy, StrategyParams,
                         make_strategy)

__version__ = "0.1.0"

__all__ = [
    "load_model", "generate", "denoise", "Profile", "ModelInfo", "Provenance", "load_profile",
    "save_profile", "STRATEGIES", "make_strategy", "Strategy", "StrategyParams", "Selection",
    "GenerationContext", "DecodingSettings", "GenerateOutput", "Trace", "CAUSES", "StepStats",
    "StatsTracker", "js_divergence", "decide", "StepDecision", "DiffusionModel", "MaskedLMModel", "LLaDAModel", "DreamModel",
    "NativeModel", "RemoteCodeModel", "CACHE_MODES", "ADAPTERS", "FloatDim", "IntDim", "ChoiceDim", "SearchSpace", "SamplerError", "ConfigError",
    "ProfileError", "ModelError", "NumericalError", "ProfileMismatchWarning", "DEFAULT_STRATEGY",
    "ModelMismatchWarning", "check_artifact", "file_sha256", "Indicator", "IndicatorConfig",
    "IndicatorFile", "load_indicator", "save_indicator", "ReasoningMap", "__version__",
]
