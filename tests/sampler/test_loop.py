"""The denoising loop, with fake denoisers whose logits we control and a tiny random BERT."""

from __future__ import annotations

import torch

import sampler
from sampler import CAUSES

from .fakes import EOS, MASK, positional_model, random_model, tiny_bert

G = 8


def test_full_step_fixed_and_impossible_less_are_identical_with_nfe_gen_length():
    model = tiny_bert()
    ids = torch.randint(5, 40, (3, 6), generator=torch.Generator().manual_seed(1))
    full = sampler.generate(model, ids, strategy="fixed", params={"steps": 16}, gen_length=16,
                            block_length=4)
    never = sampler.generate(model, ids, strategy="less",
                             params={"tau_conf": 1.0, "window": 10_000, "js_delta": 0.0},
                             gen_length=16, block_length=4)
    assert torch.equal(full.sequences, never.sequences)
    assert full.nfe.tolist() == never.nfe.tolist() == [16, 16, 16]


def test_confident_stable_positions_are_committed_in_parallel():
    answer = torch.tensor([5, 6, 7, 8, 9, 5, 6, 7])
    model = positional_model(answer, torch.full((G,), 0.99))
    out = sampler.generate(model, torch.tensor([[4, 4]]), strategy="less",
                           params={"tau_conf": 0.9, "window": 2, "js_delta": 1e-3}, gen_length=G,
                           trace=True)
    # step 1: no history (JS = inf) -> one commit by the progress rule; step 2: everything else
    assert out.nfe.tolist() == [2]
    assert out.generated[0].tolist() == answer.tolist()
    assert (out.trace.cause[0] == CAUSES.index("min_commit")).sum() == 1
    assert (out.trace.cause[0] == CAUSES.index("rule")).sum() == G - 1


def test_the_step_budget_commits_everything_left():
    answer = torch.arange(3, 11)
    model = positional_model(answer, torch.full((G,), 0.3))
    out = sampler.generate(model, torch.tensor([[4]]), strategy="threshold",
                           params={"threshold": 0.9}, gen_length=G, block_length=4, max_steps=4,
                           trace=True)
    assert out.nfe.tolist() == [4]                   # 2 steps per block
    causes = [CAUSES[c] for c in out.trace.cause[0].tolist()]
    # ties go to the lowest position: one min_commit, then the block's budget runs out
    assert causes == ["min_commit", "budget", "budget", "budget"] * 2


def test_eos_fill_commits_the_tail_at_once():
    answer = torch.tensor([5, 6, EOS, 7, 7, 7, 7, 7])
    conf = torch.tensor([0.6, 0.7, 0.99, 0.5, 0.5, 0.5, 0.5, 0.5])
    model = positional_model(answer, conf)
    out = sampler.generate(model, torch.tensor([[4]]), strategy="fixed", params={"steps": G},
                           gen_length=G, eos_fill=True, trace=True)
    # EOS is the most confident: committed first, then everything after it is EOS.
    assert out.generated[0].tolist() == [5, 6, EOS, EOS, EOS, EOS, EOS, EOS]
    assert out.nfe.tolist() == [3]
    assert [CAUSES[c] for c in out.trace.cause[0, 3:].tolist()] == ["eos_fill"] * 5
    off = sampler.generate(model, torch.tensor([[4]]), strategy="fixed", params={"steps": G},
                           gen_length=G)
    assert off.nfe.tolist() == [G] and off.generated[0, 3:].tolist() == [7] * 5


def test_finished_sequences_leave_the_batch():
    answer = torch.arange(3, 11)
    conf = torch.full((G,), 0.99)
    model = positional_model(answer, conf)
    # row 0 can only commit one token per step (window impossible), row 1 ... same model; use
    # different prompt lengths via padding and a strategy that finishes at once for everyone
    out = sampler.generate(model, torch.tensor([[4, 4], [0, 4]]), attention_mask=torch.tensor([[1, 1], [0, 1]]),
                           strategy="threshold", params={"threshold": 0.9}, gen_length=G)
    assert out.nfe.tolist() == [1, 1]
    assert model.batch_sizes == [2]


def test_batch_shrinks_as_rows_finish():
    calls = []

    def fn(x, call):
        calls.append(x.shape[0])
        b, length = x.shape
        conf = torch.where(x[:, :1] == 4, 0.99, 0.3).expand(b, G)  # prompt 4: confident; 5: not
        toks = torch.full((b, G), 6)
        out = torch.zeros(b, length, 12)
        out[:, length - G:] = torch.stack([
            __import__("tests.sampler.fakes", fromlist=["peaked"]).peaked(toks[i], conf[i])
            for i in range(b)])
        return out

    from .fakes import FakeModel

    out = sampler.generate(FakeModel(fn), torch.tensor([[4], [5]]), strategy="threshold",
                           params={"threshold": 0.9}, gen_length=G)
    assert out.nfe.tolist() == [1, G]
    assert calls == [2] + [1] * (G - 1)


def test_temperature_sampling_is_reproducible_and_varies_with_the_seed():
    ids = torch.tensor([[4, 5, 6]] * 4)

    def run(seed):
        return sampler.generate(random_model(1), ids, strategy="fixed", params={"steps": G}, gen_length=G,
                                temperature=1.5, generator=torch.Generator().manual_seed(seed)).generated

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))
    assert not (run(0) == MASK).any()


def test_trace_records_the_moment_of_commitment():
    answer = torch.tensor([5, 6, 7, 8, 9, 5, 6, 7])
    conf = torch.linspace(0.5, 0.99, G)
    model = positional_model(answer, conf)
    out = sampler.generate(model, torch.tensor([[4]]), strategy="fixed", params={"steps": G},
                           gen_length=G, trace=True)
    trace = out.trace
    assert trace.step[0].tolist() == list(range(G, 0, -1))    # most confident first
    renormalised = conf / (1 - (1 - conf) / 11)        # the mask token's share is excluded
    assert torch.allclose(trace.confidence[0], renormalised, atol=1e-5)
    assert trace.persistence[0].tolist() == trace.step[0].tolist()  # top-1 never changes
    assert torch.isinf(trace.js[0, -1]) and (trace.js[0, :-1] < 1e-6).all()
    assert trace.committed_at(0, 1).tolist() == [G - 1]


def test_mask_token_is_never_written():
    def fn(x, call):
        out = torch.zeros(x.shape[0], x.shape[1], 12)
        out[..., MASK] = 10.0                            # the model loves the mask token
        out[..., 7] = 5.0
        return out

    from .fakes import FakeModel

    out = sampler.generate(FakeModel(fn), torch.tensor([[4]]), strategy="threshold", gen_length=G)
    assert out.generated[0].tolist() == [7] * G


def test_trace_names_its_causes():
    answer = torch.arange(3, 11)
    model = positional_model(answer, torch.full((G,), 0.3))
    out = sampler.generate(model, torch.tensor([[4], [4]]), strategy="threshold",
                           params={"threshold": 0.9}, gen_length=G, block_length=4, max_steps=4,
                           trace=True)
    assert out.trace.cause.dtype == torch.uint8                 # the codes stay as they were
    expected = ["min_commit", "budget", "budget", "budget"] * 2
    assert out.trace.cause_names() == [expected, expected]
