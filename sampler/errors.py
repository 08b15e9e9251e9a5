"""The errors of the sampler library.

Every mistake a user can make raises a subclass of :class:`SamplerError` whose message says what is
wrong and how to fix it, in one line. Command-line front ends print that line and exit non-zero.
"""

from __future__ import annotations

__all__ = ["SamplerError", "ConfigError", "ProfileError", "ModelError", "NumericalError"]


class SamplerError(Exception):
    """Base class of every error raised on purpose by `sampler`."""


class ConfigError(SamplerError, ValueError):
    """A setting, strategy name or parameter is unknown, mistyped or out of range."""


class ProfileError(ConfigError):
    """A profile file cannot be read, or its content is invalid."""


class ModelError(SamplerError):
    """A model cannot be loaded or lacks what diffusion decoding needs (e.g. a mask token)."""


class NumericalError(SamplerError, FloatingPointError):
    """The model produced logits that cannot be decoded (NaN)."""
