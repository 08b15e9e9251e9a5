"""The `cot` generator: sets, formats, and a validator that checks every equation of the chain."""

from __future__ import annotations

import random
import re
from itertools import islice, permutations

import pytest

from sampler.zoo.cot import (ALPHABET, BLOCK_LENGTH, GEN_LENGTH, KINDS, MIX, CotProblem,
                             make_problem, make_splits, parse_chain, score, train_stream)


@pytest.fixture(scope="module")
def splits() -> dict[str, list[CotProblem]]:
    return make_splits(seed=7, n_train=3_000, n_tune=200, n_test=500)


def test_splits_have_the_requested_sizes_and_mix(splits):
    assert {name: len(problems) for name, problems in splits.items()} == {
        "train": 3_000, "tune": 200, "test": 500}
    for name in ("tune", "test"):
        for kind in KINDS:
            share = sum(p.kind == kind for p in splits[name]) / len(splits[name])
            assert share == pytest.approx(MIX[kind], abs=0.01)
    for kind in KINDS:  # the training stream draws kinds with the MIX weights
        share = sum(p.kind == kind for p in splits["train"]) / len(splits["train"])
        assert share == pytest.approx(MIX[kind], abs=0.03)


def test_held_out_sets_are_disjoint_from_each_other_and_from_train(splits):
    test_q = [p.question for p in splits["test"]]
    tune_q = [p.question for p in splits["tune"]]
    assert len(set(test_q)) == len(test_q) and len(set(tune_q)) == len(tune_q)
    assert not set(test_q) & set(tune_q)
    assert not (set(test_q) | set(tune_q)) & {p.question for p in splits["train"]}


def test_the_default_held_out_set_has_at_least_500_problems():
    sets = make_splits(n_train=0)
    assert len(sets["test"]) >= 500 and len(sets["tune"]) >= 200


def test_splits_are_reproducible_from_the_seed(splits):
    again = make_splits(seed=7, n_train=3_000, n_tune=200, n_test=500)
    for name in splits:
        assert [(p.question, p.answer) for p in again[name]] == [
            (p.question, p.answer) for p in splits[name]]
    other = make_splits(seed=8, n_train=0, n_tune=200, n_test=500)
    assert [p.question for p in other["test"]] != [p.question for p in splits["test"]]


def test_held_out_sets_do_not_depend_on_the_train_size(splits):
    small = make_splits(seed=7, n_train=10, n_tune=200, n_test=500)
    assert [p.question for p in small["test"]] == [p.question for p in splits["test"]]
    assert [p.question for p in small["tune"]] == [p.question for p in splits["tune"]]


def test_the_train_set_is_the_start_of_the_training_stream(splits):
    stream = train_stream(seed=7, n_tune=200, n_test=500)
    assert [p.answer for p in islice(stream, 3_000)] == [p.answer for p in splits["train"]]


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="known kinds"):
        make_problem(random.Random(0), "poetry")


EQUATIONS = {"chain": (3, 6), "sum": (2, 4), "pair": (3, 3)}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("kind", KINDS)
def test_every_generated_answer_is_valid_fits_and_uses_the_alphabet(seed, kind):
    rng = random.Random(seed)
    low, high = EQUATIONS[kind]
    for _ in range(400):
        problem = make_problem(rng, kind)
        assert score(problem, problem.answer) == 1.0, problem
        assert len(problem.answer) <= 80 < GEN_LENGTH   # the rest is EOS padding
        assert set(problem.question + problem.answer) <= set(ALPHABET)
        *working, final = problem.answer.split("\n")
        assert final == f"#### {problem.meta['target']}"
        assert low <= len(working) <= high
        numbers = [int(n) for n in re.findall(r"\d+", problem.question)]
        assert all(10 <= n <= 99 for n in numbers if n > 9) and max(numbers) >= 10


def test_the_task_needs_several_blocks():
    assert GEN_LENGTH == 128 and BLOCK_LENGTH == 32 and GEN_LENGTH % BLOCK_LENGTH == 0


@pytest.mark.parametrize("seed", range(3))
def test_validator_rejects_any_single_changed_digit(seed):
    """Changing one digit anywhere in a reference answer breaks an equation or the final line."""
    rng = random.Random(seed)
    for kind in KINDS:
        for _ in range(40):
            problem = make_problem(rng, kind)
            digits = [i for i, c in enumerate(problem.answer) if c.isdigit()]
            for i in rng.sample(digits, 5):
                new = str((int(problem.answer[i]) + rng.randint(1, 9)) % 10)
                broken = problem.answer[:i] + new + problem.answer[i + 1:]
                assert score(problem, broken) == 0.0, (problem.answer, broken)


def test_every_order_of_a_sum_is_accepted():
    problem = CotProblem("sum", "Ann has 23 pens, Bob has 41, Sam has 17, Mia has 41. How many in all?",
                         "23+41=64\n64+17=81\n81+41=122\n#### 122",
                         {"counts": [23, 41, 17, 41], "target": 122})
    for order in set(permutations(problem.meta["counts"])):
        value, lines = order[0], []
        for count in order[1:]:
            lines.append(f"{value}+{count}={value + count}")
            value += count
        assert score(problem, "\n".join(lines) + f"\n#### {value}") == 1.0, order


CHAIN = CotProblem("chain", "Ann has 4 boxes of 23 pens, sells 15, buys 32. How many now?",
                   "4*23=92\n92-15=77\n77+32=109\n#### 109",
                   {"boxes": 4, "per_box": 23, "steps": [["-", 15], ["+", 32]], "target": 109})
SUM = CotProblem("sum", "Ann has 23 pens, Bob has 41, Sam has 17. How many in all?",
                 "23+41=64\n64+17=81\n#### 81", {"counts": [23, 41, 17], "target": 81})
PAIR = CotProblem("pair", "Ann has 23 pens and buys 12. Bob has 41 and sells 15. How many together?",
                  "23+12=35\n41-15=26\n35+26=61\n#### 61",
                  {"people": [[23, "+", 12], [41, "-", 15]], "target": 61})


@pytest.mark.parametrize("problem, completion, expected", [
    (CHAIN, "4*23=92\n92-15=77\n77+32=109\n#### 109", 1.0),
    (CHAIN, "4*23=92\n92-15=77\n77+32=109\n#### 109[EOS]", 1.0),    # text after the number
    (CHAIN, "23*4=92\n92-15=77\n32+77=109\n#### 109", 1.0),          # + and * commute
    (CHAIN, "4 * 23 = 92\n92-15=77\n77+32=109\n#### 109", 1.0),      # spaces are tolerated
    (CHAIN, "4*23=92\n92-15=77\n77+32=108\n#### 108", 0.0),          # a false equation
    (CHAIN, "4*23=92\n92-15=77\n77+32=109\n#### 108", 0.0),          # final != last result
    (CHAIN, "4*23=92\n92+32=124\n124-15=109\n#### 109", 0.0),        # steps out of order
    (CHAIN, "4*23=92\n92-15=77\n77+30=107\n#### 107", 0.0),          # a number not in the question
    (CHAIN, "4*23=92\n77+32=109\n#### 109", 0.0),                    # a step skipped
    (CHAIN, "92-15=77\n77+32=109\n#### 109", 0.0),                   # the product skipped
    (CHAIN, "4*23=92\n92-15=77\n77+32=109\n109+0=109\n#### 109", 0.0),  # an extra equation
    (CHAIN, "4*23=92\n15-92=77\n77+32=109\n#### 109", 0.0),          # - does not commute
    (CHAIN, "#### 109", 0.0),                                        # no working
    (CHAIN, "4*23=92\n92-15=77\n77+32=109", 0.0),                    # no #### line
    (CHAIN, "4*23=92\nso 92-15=77\n77+32=109\n#### 109", 0.0),       # a line that is no equation
    (CHAIN, "4*23=092\n092-15=77\n77+32=109\n#### 109", 0.0),        # leading zeros
    (CHAIN, "", 0.0),
    (SUM, "23+41=64\n64+17=81\n#### 81", 1.0),
    (SUM, "17+41=58\n58+23=81\n#### 81", 1.0),                      # another order
    (SUM, "41+17=58\n23+58=81\n#### 81", 1.0),
    (SUM, "23+41=64\n64+17=81\n#### 18", 0.0),                      # wrong final
    (SUM, "23+41=64\n64+16=80\n#### 80", 0.0),                      # a count changed
    (SUM, "23+23=46\n46+35=81\n#### 81", 0.0),                      # a count used twice
    (SUM, "23+41=64\n23+17=40\n#### 40", 0.0),                      # does not use the previous result
    (SUM, "23+41+17=81\n#### 81", 0.0),                             # not one addition per line
    (SUM, "23+41=64\n64+17=81\n81+0=81\n#### 81", 0.0),             # an extra equation
    (SUM, "64+17=81\n#### 81", 0.0),                                # a count missing
    (PAIR, "23+12=35\n41-15=26\n35+26=61\n#### 61", 1.0),
    (PAIR, "41-15=26\n23+12=35\n26+35=61\n#### 61", 1.0),           # sub-totals in either order
    (PAIR, "41-15=26\n12+23=35\n35+26=61\n#### 61", 1.0),
    (PAIR, "23+12=35\n41-15=26\n35+26=61\n#### 62", 0.0),           # wrong final
    (PAIR, "23+12=35\n41-15=27\n35+27=62\n#### 62", 0.0),           # a false equation
    (PAIR, "23+12=35\n41+15=56\n35+56=91\n#### 91", 0.0),           # a loss added
    (PAIR, "23+41=64\n12-15=3\n64+3=67\n#### 67", 0.0),             # the people mixed up
    (PAIR, "23+12=35\n41-15=26\n35-26=9\n#### 9", 0.0),             # not combined by a sum
    (PAIR, "23+12=35\n35+26=61\n#### 61", 0.0),                     # a sub-total missing
])
def test_score(problem, completion, expected):
    assert score(problem, completion) == expected


def test_parse_chain():
    assert parse_chain("1+2=3\n3*4=12\n#### 12 and more") == ([(1, "+", 2, 3), (3, "*", 4, 12)], 12)
    assert parse_chain("1+2=4\n#### 4") is None
    assert parse_chain("no working") is None
