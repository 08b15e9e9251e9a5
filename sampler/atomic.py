"""Writing a file whole or not at all: what every file the project writes goes through (profiles,
indicators, a training run's checkpoint and summary, a benchmark's progress).

:func:`atomic_path` gives a temporary path beside the target; the caller writes it (with any
writer: ``json``, ``torch.save``, ``safetensors``), and on success the file is flushed to disk,
given the permissions a new file gets under the umask (0644 under the usual 022, not the
temporary file's 0600) and renamed onto the target in one step. On any failure, an interrupt
included, the temporary file is removed and the target is untouched: a reader never sees half a
file, and a run killed mid-write keeps its previous file.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "write_text_atomically"]


def _umask() -> int:
    """The process's umask: from /proc on Linux (no side effect); elsewhere by setting it and
    setting it straight back (``os.umask`` is the only portable reader)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed onto ``path`` when the block ends
    normally, removed when it raises (see the module docstring)."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".",
                                   prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
