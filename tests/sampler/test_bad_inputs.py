"""Bad input through the Python API: one table, each case refused with the library's error class
and a one-line message naming what is wrong (never an IndexError, TypeError, RecursionError,
UnicodeDecodeError or a hang from deep inside).

Profiles, generate() and load_model() are covered; the command line has its own table in
tests/tuner.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

import sampler
from sampler import (ConfigError, DecodingSettings, ModelError, ModelInfo, Profile, ProfileError,
                     SamplerError)

from .fakes import tiny_bert

IDS = torch.tensor([[4, 5, 6]])
GOOD = {"format": "less-profile", "version": 1, "strategy": "less",
        "params": {"tau_conf": 0.9, "window": 2, "js_delta": 0.001},
        "decoding": {"gen_length": 8}, "model": {"name": "tiny-arith"}, "task": "arith",
        "metrics": {"accuracy": 0.5}, "provenance": {"study": "s", "trial": 1}}


def _doc(**changes: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(GOOD))
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = doc
        for parent in parents:
            node = node[parent]
        node[key] = value
    return doc


def _profile_file(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "p.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8")
    return path


def _load(content: Any) -> Callable[[Path], Any]:
    return lambda tmp_path: sampler.load_profile(_profile_file(tmp_path, content))


def _generate(ids: Any = IDS, **kwargs: Any) -> Callable[[Path], Any]:
    def run(tmp_path: Path) -> Any:
        return sampler.generate(tiny_bert(), ids, **{"gen_length": 8, **kwargs})
    return run


def _load_model(*args: Any, **kwargs: Any) -> Callable[[Path], Any]:
    return lambda tmp_path: sampler.load_model(*args, **kwargs)


def _model_folder(config_text: str | None) -> Callable[[Path], Any]:
    def run(tmp_path: Path) -> Any:
        if config_text is not None:
            (tmp_path / "config.json").write_text(config_text)
        return sampler.load_model(tmp_path, device="cpu")
    return run


HUGE = 2 ** 64
Case = tuple[str, Callable[[Path], Any], type[SamplerError], str]
GENERATE: list[Case] = [
    # --- tensors ---------------------------------------------------------------------------------
    ("id >= vocabulary", _generate(torch.tensor([[4, 40]])), ConfigError, r"token id 40, outside"),
    ("negative id", _generate(torch.tensor([[-1, 4]])), ConfigError, r"token id -1, outside"),
    ("float ids", _generate(IDS.float()), ConfigError, "2-D integer tensor"),
    ("bool ids", _generate(IDS.bool()), ConfigError, "2-D integer tensor"),
    ("1-D ids", _generate(IDS[0]), ConfigError, "2-D integer tensor"),
    ("list ids", _generate([[4, 5]]), ConfigError, "2-D integer tensor"),
    ("empty ids", _generate(IDS[:, :0]), ConfigError, "`input_ids` is empty"),
    ("mask not a tensor", _generate(attention_mask=[[1, 1, 1]]), ConfigError,
     "`attention_mask` must be a tensor"),
    ("mask of 2s", _generate(attention_mask=torch.full((1, 3), 2)), ConfigError,
     "only 0 .padding. and 1"),
    ("mask shape", _generate(attention_mask=torch.ones(1, 2)), ConfigError,
     r"`attention_mask` has shape \(1, 2\)"),
    ("right padding", _generate(attention_mask=torch.tensor([[1, 1, 0]])), ConfigError,
     "left-padded"),
    ("too long", _generate(gen_length=64), ConfigError, "exceeds the model's 64 positions"),
    # --- settings and params -----------------------------------------------------------------------
    ("temperature inf", _generate(temperature=float("inf")), ConfigError, "`temperature` is inf"),
    ("temperature 1e308", _generate(temperature=1e308), ConfigError,
     r"`temperature` = 1e\+308 is out of range; allowed range is \[0.0, 10.0\]"),
    ("temperature nan", _generate(temperature=float("nan")), ConfigError, "`temperature` is nan"),
    ("gen_length 2**64", _generate(gen_length=HUGE), ConfigError,
     r"`gen_length` = 18446744073709551616 is out of range; allowed range is \[1, 1048576\]"),
    ("gen_length 1e40", _generate(gen_length=1e40), ConfigError, "`gen_length` must be int"),
    ("max_steps 2**64", _generate(max_steps=HUGE), ConfigError, "`max_steps` = .* out of range"),
    ("min_commit 2**64", _generate(min_commit=HUGE), ConfigError, "`min_commit` = .* out of range"),
    ("js_topk 2**64", _generate(js_topk=HUGE), ConfigError, "`js_topk` = .* out of range"),
    ("window 2**64", _generate(params={"window": HUGE}), ConfigError,
     "less params: `window` = .* out of range"),
    ("steps 2**64", _generate(strategy="fixed", params={"steps": HUGE}), ConfigError,
     "fixed params: `steps` = .* out of range"),
    ("history 2**64", _generate(strategy="klass", params={"history": HUGE}), ConfigError,
     "klass params: `history` = .* out of range"),
    ("js_delta inf", _generate(params={"js_delta": float("inf")}), ConfigError,
     "`js_delta` is inf; it must be a finite number"),
    ("gamma inf", _generate(strategy="entropy_bound", params={"gamma": float("inf")}),
     ConfigError, "`gamma` is inf"),
    ("tau_conf nan", _generate(params={"tau_conf": float("nan")}), ConfigError, "`tau_conf` is nan"),
    ("strategy list", _generate(strategy=["less"]), ConfigError, r"unknown strategy \['less'\]"),
    ("params 0", _generate(params=0), ConfigError, "takes LessParams, got int"),
    ("params []", _generate(params=[]), ConfigError, "takes LessParams, got list"),
    ("profile path", _generate(profile="p.json", gen_length=None), ConfigError,
     "`profile` must be a sampler.Profile"),
    ("settings dict", _generate(settings={}, gen_length=None), ConfigError,
     "`settings` must be a sampler.DecodingSettings"),
]
PROFILES: list[Case] = [
    ("path None", lambda tmp_path: sampler.load_profile(None), ProfileError,
     "takes the path of a profile file, got NoneType"),
    ("path int", lambda tmp_path: sampler.load_profile(3), ProfileError, "got int"),
    ("missing file", lambda tmp_path: sampler.load_profile(tmp_path / "no.json"), ProfileError,
     "does not exist"),
    ("a directory", lambda tmp_path: sampler.load_profile(tmp_path), ProfileError,
     "cannot read profile file"),
    ("nested 1000", _load("[" * 1000 + "]" * 1000), ProfileError, "nested too deeply"),
    ("nested params", _load(json.dumps(GOOD)[:-1] + ', "task": ' + "[" * 5000 + "]" * 5000 + "}"),
     ProfileError, "nested too deeply"),
    ("not UTF-8", _load(b'{"format": "less-profile", "strategy": "\xe9"}'), ProfileError,
     "not UTF-8 text"),
    ("not JSON", _load("{strategy: less}"), ProfileError, "is not valid JSON"),
    ("top-level list", _load([1, 2]), ProfileError, "must be a JSON object"),
    ("top-level null", _load(None), ProfileError, "must be a JSON object"),
    ("strategy list", _load(_doc(strategy=["less"])), ProfileError,
     r"`strategy` must be a strategy name \(a string\), got list"),
    ("strategy {}", _load(_doc(strategy={})), ProfileError, "`strategy` must be .* got dict"),
    ("strategy null", _load(_doc(strategy=None)), ProfileError, "`strategy` must be .* got NoneType"),
    ("unknown strategy", _load(_doc(strategy="magic")), ProfileError, "unknown strategy 'magic'"),
    ("params 0", _load(_doc(params=0)), ProfileError, "`params` must be a mapping .* got int 0"),
    ("params ''", _load(_doc(params="")), ProfileError, "`params` must be a mapping .* got str"),
    ("params false", _load(_doc(params=False)), ProfileError, "`params` must be a mapping .* bool"),
    ("params []", _load(_doc(params=[])), ProfileError, "`params` must be a mapping .* got list"),
    ("params null", _load(_doc(params=None)), ProfileError, "`params` must be a mapping"),
    ("decoding list", _load(_doc(decoding=[8])), ProfileError,
     "decoding settings: expected a mapping"),
    ("provenance false", _load(_doc(provenance=False)), ProfileError,
     "profile provenance: expected a mapping of settings, got bool"),
    ("provenance []", _load(_doc(provenance=[])), ProfileError, "profile provenance: expected a"),
    ("model string", _load(_doc(model="tiny-arith")), ProfileError, "profile model: expected a"),
    ("adapter unknown", _load(_doc(model__adapter="anything")), ProfileError,
     "`adapter` = 'anything' is not one of 'dream', 'llada', 'masked_lm', 'remote_code'"),
    ("adapter number", _load(_doc(model__adapter=3)), ProfileError, "`adapter` must be str"),
    ("metric NaN", _load('{"format": "less-profile", "version": 1, "strategy": "less", '
                         '"metrics": {"accuracy": NaN}}'), ProfileError,
     "metric `accuracy` = nan must be a finite, non-negative number"),
    ("metric Infinity", _load('{"format": "less-profile", "version": 1, "strategy": "less", '
                              '"metrics": {"speedup": Infinity}}'), ProfileError,
     "metric `speedup` = inf must be a finite"),
    ("metric negative", _load(_doc(metrics__mean_nfe=-3)), ProfileError,
     "metric `mean_nfe` = -3 must be a finite, non-negative"),
    ("metric 10**400", _load(_doc(metrics__n=10 ** 400)), ProfileError, "metric `n` = .* finite"),
    ("5000-digit number", _load('{"format": "less-profile", "version": 1, "strategy": "less", '
                                '"metrics": {"n": ' + "9" * 5000 + '}}'), ProfileError,
     "holds a value JSON cannot read: Exceeds the limit"),
    ("metric string", _load(_doc(metrics__accuracy="high")), ProfileError,
     "metric `accuracy` must be a number"),
    ("metrics list", _load(_doc(metrics=[1])), ProfileError, "`metrics` must be a mapping"),
    ("task number", _load(_doc(task=5)), ProfileError, "`task` must be a string"),
    ("window 2**64", _load(_doc(params__window=HUGE)), ProfileError,
     r"less params: `window` = 18446744073709551616 is out of range; allowed range is \[1, 1048576\]"),
    ("min_commit 2**64", _load(_doc(decoding__min_commit=HUGE)), ProfileError,
     "`min_commit` = .* out of range"),
    ("max_steps 2**64", _load(_doc(decoding__max_steps=HUGE)), ProfileError,
     "`max_steps` = .* out of range"),
    ("gen_length 1e40", _load(_doc(decoding__gen_length=1e40)), ProfileError,
     "`gen_length` must be int"),
    ("gen_length 2**64", _load(_doc(decoding__gen_length=HUGE)), ProfileError,
     "`gen_length` = .* out of range"),
    ("temperature 1e308", _load(_doc(decoding__temperature=1e308)), ProfileError,
     "`temperature` = 1e\\+308 is out of range"),
    ("unknown top-level key", _load(_doc(colour="red")), ProfileError,
     "^[^ ]+p.json: profile: unknown key `colour`"),  # one "profile:" prefix, not two
    ("unknown key with a newline", _load(_doc(**{"params__a\nb": 1})), ProfileError,
     r"unknown key `'a\\nb'`"),
    ("long value", _load(_doc(params__window=list(range(1000)))), ProfileError,
     r"`window` must be int, got list \[0, 1, 2, .*\.\.\.\.$"),
]
MODELS: list[Case] = [
    ("model None", _load_model(None), ModelError, "takes a bundled model name"),
    ("BERT as dream", _load_model("tiny-arith", adapter="dream", device="cpu"), ModelError,
     "the native dream implementation has no such weight"),
    ("BERT as llada", _load_model("tiny-arith", adapter="llada", device="cpu"), ModelError,
     "LLaDA config.json lacks `d_model`"),
    ("adapter unknown", _load_model("tiny-arith", adapter="nope"), ModelError,
     "unknown model adapter 'nope'; known adapters"),
    ("adapter list", _load_model("tiny-arith", adapter=["dream"]), ModelError,
     "unknown model adapter"),
    ("device bogus", _load_model("tiny-arith", device="bogus"), ModelError, "unknown device 'bogus'"),
    ("dtype nosuch", _load_model("tiny-arith", device="cpu", dtype="nosuch"), ModelError,
     "unknown dtype 'nosuch'"),
    ("dtype number", _load_model("tiny-arith", device="cpu", dtype=5), ModelError,
     "`dtype` must be a torch.dtype"),
    ("folder without config", _model_folder(None), ModelError, "has no config.json"),
    ("config not JSON", _model_folder("{not json"), ModelError, "is not valid JSON"),
    ("config a list", _model_folder("[1, 2]"), ModelError, "must hold a JSON object"),
]
CASES: list[Case] = [(f"{api}: {name}", *rest) for api, cases in
                     (("generate", GENERATE), ("load_profile", PROFILES), ("load_model", MODELS))
                     for name, *rest in cases]


@pytest.mark.parametrize("call,error,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_in_one_line(tmp_path, call, error, message):
    with pytest.raises(error) as info:
        call(tmp_path)
    text = str(info.value)
    assert "\n" not in text and len(text) < 400, text
    assert re.search(message, text), (message, text)


def test_the_table_is_large_and_named_uniquely():
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names)) and len(names) >= 60


def test_a_profile_built_in_code_is_checked_like_a_file():
    with pytest.raises(ProfileError, match="`params` must be a mapping"):
        Profile(strategy="less", params=0)
    with pytest.raises(ProfileError, match="`decoding` must be a mapping"):
        Profile(strategy="less", decoding={"gen_length": 8})
    with pytest.raises(ConfigError, match="`adapter` = 'bogus'"):
        ModelInfo(name="m", adapter="bogus")
    with pytest.raises(ConfigError, match=r"`gen_length` = 2097152 is out of range"):
        DecodingSettings(gen_length=2 ** 21)
