"""The tuner's errors. The CLI prints their message as one line and exits 1 (2 for bad arguments)."""

from __future__ import annotations

__all__ = ["TunerError", "UsageError", "DataError", "StorageError", "StudyMismatchError"]


class TunerError(Exception):
    """Base class of every error raised on purpose by `tuner`."""

    exit_code = 1


class UsageError(TunerError):
    """A command-line argument or spec value is wrong (unknown name, bad range, ...)."""

    exit_code = 2


class DataError(TunerError):
    """Task data cannot be read, is empty, or is too small for the splits asked for."""


class StorageError(TunerError):
    """The study storage URL is malformed or the database cannot be reached."""


class StudyMismatchError(TunerError):
    """A study is resumed with settings different from those it was created with."""
