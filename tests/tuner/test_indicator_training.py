"""`tuner train-indicator`: NI Sampling's indicator trained on a task's training split."""

from __future__ import annotations

import json

import pytest
import torch

import sampler
from sampler.indicator import IndicatorConfig, load_indicator
from tuner.errors import UsageError
from tuner.indicator_training import (Rows, TrainingOptions, fit_indicator, train_indicator,
                                      training_examples)
from tuner.tasks import get_task, hash_examples

SHORT = ["--gen-length", "8", "--block-length", "8"]


def test_fitting_lowers_the_loss():
    """Rows whose label is readable from the hidden state: training lowers the loss a lot."""
    g = torch.Generator().manual_seed(0)
    config = IndicatorConfig(hidden_size=6, topk=2, width=16, depth=1, dropout=0.0)
    hidden = torch.randn(400, 6, generator=g)
    rows = Rows(hidden=[hidden.half()], features=[torch.rand(400, config.n_features, generator=g)],
                labels=[hidden[:, 0] > 0], example=[torch.arange(400) // 10])
    net, figures = fit_indicator(rows, config, TrainingOptions(epochs=10, batch_rows=64, lr=1e-2))
    assert figures["final_train_loss"] < 0.5 * figures["initial_train_loss"]
    assert figures["val_accuracy"] > 0.8 and not net.training


def test_training_split_only():
    task = get_task("arith")
    train = training_examples(task, 50)
    held = {ex.prompt for split in ("tune", "test") for ex in task.examples(split)}
    assert len(train) == 50 and not held & {ex.prompt for ex in train}
    assert training_examples(task, 50) == train  # seeded
    with pytest.raises(UsageError, match="no training split"):
        training_examples(get_task("humaneval"), 1)


def test_train_on_a_few_examples(smoke_model_dir):
    from tuner.evaluation import Evaluation
    from tuner.spec import load_spec

    spec = load_spec("arith").with_overrides(model=smoke_model_dir, gen_length=8, block_length=8)
    phases = []
    result = train_indicator(Evaluation(spec, device="cpu", reuse=False),
                             TrainingOptions(n_examples=3, epochs=2, rounds=2, seed=1),
                             progress=lambda phase, done, total: phases.append(phase))
    prov, figures = result.provenance, result.provenance["figures"]
    assert {"reference", "trajectories", "training"} <= set(phases)
    assert prov["split"] == "train" and prov["n_examples"] == 3
    assert prov["data_hash"] == hash_examples(training_examples(get_task("arith"), 3))
    assert prov["model_fingerprint"] == Evaluation(spec, device="cpu").model_fingerprint
    assert prov["model_signature"] == sampler.load_model(smoke_model_dir).weights_signature()
    for fit in (figures["round 1"], figures["round 2"]):
        assert fit["final_train_loss"] < fit["initial_train_loss"]
    assert figures["round 2"]["rows"] > figures["round 1"]["rows"]  # the indicator's own states


@pytest.fixture(scope="module")
def trained(smoke_model_dir, tmp_path_factory):
    """(file, the params `train-indicator` prints) of an indicator for the smoke model."""
    from typer.testing import CliRunner

    from tuner.cli import app

    out = tmp_path_factory.mktemp("indicator") / "ind.safetensors"
    result = CliRunner().invoke(app, ["train-indicator", "--task", "arith", "--model",
                                      smoke_model_dir, "-o", str(out), "--n", "2", "--epochs",
                                      "1", "--rounds", "1", *SHORT])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout.split("--params '")[1].split("'")[0])


def test_cli_writes_a_file_ni_decodes_with(trained, smoke_model_dir):
    out, params = trained
    assert params["indicator_sha256"] == sampler.file_sha256(out)
    loaded = load_indicator(out, params["indicator_sha256"])
    assert loaded.provenance["task"] == "arith" and loaded.provenance["model"] == smoke_model_dir
    model = sampler.load_model(smoke_model_dir, device="cpu")
    ids = model.tokenizer(["1+2=", "3+4="], return_tensors="pt")["input_ids"]
    decoded = sampler.generate(model, ids, strategy="ni", params={**params, "theta": 0.5},
                               gen_length=8, block_length=8)
    assert not (decoded.generated == model.mask_id).any()


@pytest.mark.parametrize("args, words", [
    (["--task", "nope"], "unknown task"),
    (["--task", "arith", "--model", "/no/such/model"], "no/such/model"),
    (["--task", "humaneval"], "no training split"),
    (["--task", "arith", "--n", "0"], "n_examples"),
])
def test_cli_refusals_are_one_line_and_write_nothing(cli, tmp_path, args, words):
    out = tmp_path / "ind.safetensors"
    result = cli(["train-indicator", *args, "-o", str(out)])
    assert result.exit_code != 0
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output and not list(tmp_path.iterdir())


def test_cli_refuses_an_unwritable_output(cli, tmp_path):
    result = cli(["train-indicator", "--task", "arith", "-o", str(tmp_path / "missing" / "i.st")])
    assert result.exit_code != 0 and "does not exist" in result.stderr
    assert not list(tmp_path.iterdir())


def test_a_study_of_ni_with_the_file_as_fixed_params(cli, storage, tmp_path):
    """On tiny-arith (the smoke model cannot do the task: nothing to tune), with a random
    indicator of its hidden size: the file and its hash are fixed params of the study."""
    from tests.sampler.fakes import fake_indicator_params

    made = fake_indicator_params(tmp_path, hidden_size=256)
    params = {k: made[k] for k in ("indicator", "indicator_sha256")}
    result = cli(["optimize", "--task", "arith", "--strategy", "ni", "--params",
                  json.dumps(params), "--trials", "2", "--n-tune", "2"])
    assert result.exit_code == 0, result.output
    assert "strategy ni" in result.stderr and "theta=" in result.stdout


def test_the_bundled_indicator_names_tiny_arith_and_its_training_data():
    """sampler/zoo/tiny_arith/ni-indicator.safetensors: trained by `tuner train-indicator` for
    the bundled model (its weight fingerprint) on arith's training split (its data hash)."""
    from pathlib import Path

    from tuner.evaluation import Evaluation
    from tuner.spec import load_spec

    path = Path(sampler.__file__).parent / "zoo" / "tiny_arith" / "ni-indicator.safetensors"
    assert path.stat().st_size < 1 << 20
    prov = load_indicator(path).provenance
    evaluation = Evaluation(load_spec("arith"), device="cpu", reuse=False)
    assert prov["model"] == "tiny-arith" and prov["split"] == "train"
    assert prov["model_fingerprint"] == evaluation.model_fingerprint
    examples = training_examples(evaluation.task, prov["n_examples"])
    assert prov["data_hash"] == hash_examples(examples)


def test_forward_pass_reuse_keeps_hidden_states_exact():
    """tuner's CachedModel answers span_hidden from its cache like span_logits: same tensors, and
    a row seen before costs no forward pass (a study of ni reuses passes across trials)."""
    from tests.sampler.fakes import tiny_bert
    from tuner.cache import CachedModel, LogitsCache

    model = tiny_bert()
    x = torch.randint(4, 30, (3, 12), generator=torch.Generator().manual_seed(0))
    cached = CachedModel.wrap(model, LogitsCache())
    want = model.span_hidden(x, None, 5)
    first = cached.span_hidden(x, None, 5)
    again = cached.span_hidden(x[[2, 0]], None, 5)
    assert cached.rows_computed == 3
    for got, ref in ((first, want), (again, tuple(t[[2, 0]] for t in want))):
        assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])
    assert torch.equal(cached.span_logits(x, None, 5), want[0]) and cached.rows_computed == 3
