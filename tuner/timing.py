"""Wall time of decoding, measured with the device synchronised.

CUDA runs kernels asynchronously: without a synchronisation the clock stops when the last kernel
is queued, not when it has run. :class:`Stopwatch` synchronises the model's device on entering and
leaving each timed block, so the seconds it adds up are the seconds the device spent.
"""

from __future__ import annotations

import time

import torch

__all__ = ["Stopwatch", "synchronize"]


def synchronize(device: torch.device) -> None:
    """Wait for every kernel queued on ``device`` (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Adds up the seconds spent inside ``with stopwatch:`` blocks on ``device``."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.seconds = 0.0
        self._started = 0.0

    def __enter__(self) -> "Stopwatch":
        synchronize(self.device)
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        self.seconds += time.perf_counter() - self._started
