"""`python -m sampler.demo`: decodes like the tuner (EOS fill) and with an exported profile."""

from __future__ import annotations

import re

import sampler
from sampler import demo
from sampler.profile import ModelInfo, Profile, save_profile
from sampler.zoo.evaluate import TASKS


def _figures(out: str) -> dict[str, tuple[float, float]]:
    found = re.findall(r"^(\S+?):\s+accuracy (\d+)%, mean NFE ([\d.]+)", out, re.M)
    return {name: (int(acc) / 100, float(nfe)) for name, acc, nfe in found}


def test_the_demo_decodes_with_the_tuner_s_settings(capsys):
    assert demo.main(["--n", "4"]) == 0
    figures = _figures(capsys.readouterr().out)
    # EOS fill, as the tuner's arith spec: full-step ends before its 32 steps
    assert figures["full-step"][1] < 32
    assert "less" in figures


def test_the_demo_decodes_an_exported_profile(tmp_path, capsys):
    path = tmp_path / "p.json"
    save_profile(Profile(strategy="threshold", params={"threshold": 0.9},
                         decoding=demo.TUNER_SETTINGS, model=ModelInfo(name="tiny-arith"),
                         task="arith"), path)
    assert demo.main(["--profile", str(path), "--n", "4"]) == 0
    out = capsys.readouterr().out
    figures = _figures(out)
    assert set(figures) == {"full-step", "threshold"}
    # the same decode through the library gives the NFE the demo printed
    model = sampler.load_model("tiny-arith")
    problems = sampler.zoo.arith.make_splits(seed=0, n_train=0)["test"][:4]
    batch = model.tokenizer([p.question for p in problems], padding=True, return_tensors="pt")
    again = sampler.generate(model, batch.input_ids, attention_mask=batch.attention_mask,
                             profile=sampler.load_profile(path))
    assert figures["threshold"][1] == round(again.nfe.float().mean().item(), 2)


def test_a_profile_of_another_task_is_one_line(tmp_path, capsys):
    path = tmp_path / "p.json"
    save_profile(Profile(strategy="threshold", params={"threshold": 0.9},
                         decoding=sampler.DecodingSettings(gen_length=64)), path)
    assert demo.main(["--profile", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tuned on arith" in err


def test_the_cot_demo_decodes_four_blocks_with_the_cot_settings(cot_smoke_dir, capsys):
    assert demo.main(["--task", "cot", "--model", str(cot_smoke_dir), "--n", "2"]) == 0
    out = capsys.readouterr().out
    figures = _figures(out)
    assert set(figures) == {"full-step", "less"}
    settings = TASKS["cot"].decoding()
    assert (settings.gen_length, settings.block_length) == (128, 32)
    # the same full-step decode through the library spends the NFE the demo printed
    model = sampler.load_model(cot_smoke_dir, device="cpu")
    problems = sampler.zoo.cot.make_splits(seed=0, n_train=0)["test"][:2]
    batch = model.tokenizer([p.question for p in problems], padding=True, return_tensors="pt")
    full = sampler.generate(model, batch.input_ids, attention_mask=batch.attention_mask,
                            strategy="fixed", params={"steps": 128}, settings=settings)
    assert figures["full-step"][1] == round(full.nfe.float().mean().item(), 2)


def test_a_cot_profile_picks_the_cot_task_and_an_arith_one_is_refused_for_cot(
        tmp_path, cot_smoke_dir, capsys):
    path = tmp_path / "p.json"
    save_profile(Profile(strategy="threshold", params={"threshold": 0.9},
                         decoding=TASKS["cot"].decoding(), task="cot"), path)
    assert demo.main(["--profile", str(path), "--model", str(cot_smoke_dir), "--n", "1"]) == 0
    assert set(_figures(capsys.readouterr().out)) == {"full-step", "threshold"}
    save_profile(Profile(strategy="threshold", params={"threshold": 0.9},
                         decoding=demo.TUNER_SETTINGS, task="arith"), path)
    assert demo.main(["--profile", str(path), "--task", "cot", "--model", str(cot_smoke_dir)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the cot demo needs a profile tuned on cot" in err
