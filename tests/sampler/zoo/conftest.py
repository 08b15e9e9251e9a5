"""A tiny-cot-shaped model trained for a few steps (seconds): the native LLaDA path, no skill."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def cot_smoke_dir(tmp_path_factory):
    """The folder of ``python -m sampler.zoo.train --task cot --smoke`` (an official-format LLaDA
    checkpoint), trained once per test run."""
    from sampler.zoo.train import main

    folder = tmp_path_factory.mktemp("cot_smoke")
    threads = torch.get_num_threads()
    try:
        main(["--task", "cot", "--out", str(folder), "--smoke", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    return folder
