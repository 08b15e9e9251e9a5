"""Files a strategy reads (a trained indicator, a reasoning map): referenced by path and content hash.

A strategy that needs such a file takes two params, the path and the file's SHA-256, so that a
profile names exactly the file it was tuned with; :func:`check_artifact` refuses a missing file or
one whose content changed, in one line, before anything is decoded.

Such a file is trained on one model and records its :meth:`~sampler.DiffusionModel.weights_signature`
(``model_signature``); a strategy decoding with it on other weights warns once
(:class:`ModelMismatchWarning`, :class:`TrainedOn`): the file still loads, but what it
learnt from one model's states need not hold for another's.

In a file that holds such params (a profile), a relative path is relative to that file's folder,
not to the working directory of whoever reads it: :func:`path_from_file` reads it so and
:func:`path_for_file` writes it so (relative when the file lies in that folder or below, so that
the folder can move as a whole; absolute otherwise). In memory (params given to a strategy), a
relative path is relative to the working directory, as any path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
import weakref
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import ConfigError

__all__ = ["file_sha256", "check_artifact", "map_artifact_paths", "path_from_file",
           "path_for_file", "ModelMismatchWarning", "TrainedOn"]


class ModelMismatchWarning(UserWarning):
    """A trained file (an NI indicator, an EDIT reasoning map) decodes with a model whose weights
    are not those it was trained on."""


def file_sha256(path: str | Path) -> str:
    """The hex SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_artifact(path: str | Path, sha256: str | None, what: str) -> Path:
    """``path`` as a Path once it is a readable file whose SHA-256 is ``sha256`` (None: any
    content). ``what`` names the file in messages (e.g. "indicator")."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{what} file {file} does not exist; give the path of the file written "
                          f"when the {what} was made.")
    try:
        actual = file_sha256(file)
    except OSError as err:
        raise ConfigError(f"cannot read {what} file {file}: {err.strerror or err}.") from None
    if sha256 is not None and actual != sha256.lower():
        raise ConfigError(f"{what} file {file} has SHA-256 {actual[:12]}..., not the "
                          f"{sha256[:12]}... it was referenced with: it changed since; use the "
                          f"original file or re-tune with this one.")
    return file


class TrainedOn:
    """The model a trained file was made with (its ``model`` name and ``model_signature``, from
    the ``record`` the file keeps: an indicator's provenance, a map's meta), checked against the
    model each decode runs: a mismatch warns once per model (:class:`ModelMismatchWarning`).
    Files written before the signature was recorded are not checked."""

    def __init__(self, what: str, file: str, record: Mapping[str, Any]) -> None:
        self.what, self.file = what, file
        self.model, self.signature = record.get("model"), record.get("model_signature")
        self._checked: weakref.ReferenceType | None = None  # the network last checked

    def check(self, model: Any) -> None:
        """Warn if ``model`` (a :class:`~sampler.DiffusionModel`) has other weights; each network
        is hashed once, not at every decode."""
        network = model.network
        if not self.signature or (self._checked is not None and self._checked() is network):
            return
        self._checked = weakref.ref(network)
        actual = model.weights_signature()
        if actual != self.signature:
            warnings.warn(
                f"{self.what} {self.file} was trained on model {self.model!r} (weights signature "
                f"{self.signature}) but decodes with {getattr(model, 'name', '?')!r} ({actual}): "
                f"what it learnt may not hold for these weights; make one for this model.",
                ModelMismatchWarning, stacklevel=4)


def map_artifact_paths(strategy: str, params: Mapping[str, Any],
                       change: Callable[[str], str]) -> dict[str, Any]:
    """``params`` of ``strategy`` with ``change`` applied to each file path among them: a param
    ``X`` beside an ``X_sha256`` (the convention above: ni's ``indicator``, edit's ``map``), also
    in the params of the inner strategy a wrapper names (``base`` / ``base_params``, as edit's).
    Empty paths and unknown strategies are left as they are."""
    from .strategies import STRATEGIES  # here: the strategies import this module

    out = dict(params)
    cls = STRATEGIES.get(strategy) if isinstance(strategy, str) else None
    if cls is None:
        return out
    names = {f.name for f in dataclasses.fields(cls.Params)}
    for name in sorted(names):
        if f"{name}_sha256" in names and isinstance(out.get(name), str) and out[name]:
            out[name] = change(out[name])
    inner = out.get("base")
    if isinstance(inner, str) and isinstance(out.get("base_params"), Mapping):
        out["base_params"] = map_artifact_paths(inner, out["base_params"], change)
    return out


def path_from_file(path: str, folder: str | os.PathLike) -> str:
    """``path`` as written in a file in ``folder``: absolute, relative ones taken relative to
    ``folder``; ``~/...`` as written."""
    if path.startswith("~"):
        return path
    return os.path.normpath(path) if os.path.isabs(path) else \
        os.path.abspath(os.path.join(folder, path))


def path_for_file(path: str, folder: str | os.PathLike) -> str:
    """``path`` (absolute, or relative to the working directory) as a file in ``folder`` writes
    it: relative to ``folder`` when it lies in ``folder`` or below, else absolute; ``~/...`` as
    written."""
    if path.startswith("~"):
        return path
    full, base = os.path.abspath(path), os.path.abspath(folder)
    if os.path.commonpath([full, base]) == base and full != base:
        return Path(os.path.relpath(full, base)).as_posix()
    return full
