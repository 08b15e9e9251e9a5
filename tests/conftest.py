"""Helpers every test folder shares: the smoke models (tiny-arith-shaped and tiny-cot-shaped), a free port, and the `tuner` command line.

Nothing here imports the tuner or the dashboard at collection time, so that ``tests/sampler`` runs
where only the sampler is installed (``pip install -e . pytest``).
"""

from __future__ import annotations

import signal
import socket

import pytest

# A runner started in the background by a shell without job control (`pytest ... &`, nohup)
# inherits SIGINT *ignored*, and so would every process the tests start: the Ctrl-C tests
# (tuner.study.InterruptGuard leaves an ignored SIGINT alone, by design) would then wait for an
# interrupt that never comes. The suite tests Ctrl-C, so it restores Python's default handler
# (a handled signal is reset to the default in child processes, an ignored one is not).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def smoke_model_dir(tmp_path_factory) -> str:
    """The folder of a model trained for a few steps (seconds): real shapes and tokenizer, no
    skill. Trained once per test run."""
    from sampler.zoo import train

    folder = tmp_path_factory.mktemp("smoke_model")
    train.main(["--out", str(folder), "--smoke"])
    return str(folder)


@pytest.fixture(scope="session")
def smoke_model(smoke_model_dir):
    """:func:`smoke_model_dir`, loaded on the CPU."""
    import sampler

    return sampler.load_model(smoke_model_dir, device="cpu")


@pytest.fixture(scope="session")
def cot_smoke_dir(tmp_path_factory):
    """The folder (a Path) of ``python -m sampler.zoo.train --task cot --smoke``: a
    tiny-cot-shaped native LLaDA in the official checkpoint format, no skill. Trained once per
    test run."""
    import torch

    from sampler.zoo.train import main

    folder = tmp_path_factory.mktemp("cot_smoke")
    threads = torch.get_num_threads()
    try:
        main(["--task", "cot", "--out", str(folder), "--smoke", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def free_port():
    """A function returning a loopback TCP port that was free a moment ago (for a server the test
    starts itself)."""
    return _free_port


@pytest.fixture
def cli():
    """Run `tuner` in-process: ``cli(["optimize", ...])`` returns click's ``Result``, with
    ``exit_code``, ``stdout`` and ``stderr`` apart (``output`` has both)."""
    from typer.testing import CliRunner

    from tuner.cli import app

    runner = CliRunner()
    return lambda args: runner.invoke(app, args)
