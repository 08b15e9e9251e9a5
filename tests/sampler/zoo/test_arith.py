"""The `arith` generator: sets, formats and the validators."""

from __future__ import annotations

import random

import pytest

from sampler.zoo.arith import (ALPHABET, GEN_LENGTH, BLOCK_LENGTH, KINDS, MIX, ArithProblem,
                               extract_answer, make_problem, make_splits, score)


@pytest.fixture(scope="module")
def splits() -> dict[str, list[ArithProblem]]:
    return make_splits(seed=7, n_train=3_000, n_tune=200, n_test=300)


def test_splits_have_the_requested_sizes_and_mix(splits):
    assert {name: len(problems) for name, problems in splits.items()} == {
        "train": 3_000, "tune": 200, "test": 300}
    for problems in splits.values():
        for kind in KINDS:
            share = sum(p.kind == kind for p in problems) / len(problems)
            assert share == pytest.approx(MIX[kind], abs=0.01)


def test_held_out_sets_are_disjoint_from_each_other_and_from_train(splits):
    test_q = [p.question for p in splits["test"]]
    tune_q = [p.question for p in splits["tune"]]
    assert len(set(test_q)) == len(test_q) and len(set(tune_q)) == len(tune_q)
    train_q = {p.question for p in splits["train"]}
    assert not set(test_q) & set(tune_q)
    assert not (set(test_q) | set(tune_q)) & train_q


def test_splits_are_reproducible_from_the_seed(splits):
    again = make_splits(seed=7, n_train=3_000, n_tune=200, n_test=300)
    assert all([p.answer for p in again[k]] == [p.answer for p in splits[k]] for k in splits)
    assert [p.question for p in again["test"]] == [p.question for p in splits["test"]]
    other = make_splits(seed=8, n_train=0, n_tune=200, n_test=300)
    assert [p.question for p in other["test"]] != [p.question for p in splits["test"]]


def test_held_out_sets_do_not_depend_on_the_train_size(splits):
    small = make_splits(seed=7, n_train=10, n_tune=200, n_test=300)
    assert [p.question for p in small["test"]] == [p.question for p in splits["test"]]


def test_every_reference_answer_is_valid_fits_and_uses_the_alphabet(splits):
    assert GEN_LENGTH % BLOCK_LENGTH == 0
    for problem in splits["train"] + splits["test"]:
        assert score(problem, problem.answer) == 1.0
        assert len(problem.answer) <= GEN_LENGTH
        assert set(problem.question + problem.answer) <= set(ALPHABET)
        assert problem.answer.splitlines()[-1].startswith("#### ")


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="known kinds"):
        make_problem(random.Random(0), "poetry")


ARITH = ArithProblem("arith", "Ann has 12 pens, gets 3, loses 5. How many now?",
                     "12+3=15\n15-5=10\n#### 10", {"target": 10})
SPLIT = ArithProblem("split", "Bob puts 5 eggs in 2 bags, none empty. How many in bag one?",
                     "2+3=5\n#### 2", {"total": 5})
ORDER = ArithProblem("order", "Mia writes 3, 7, 5 in any order. What number?",
                     "7,5,3\n#### 753", {"digits": "375"})


@pytest.mark.parametrize("problem, completion, expected", [
    (ARITH, "12+3=15\n15-5=10\n#### 10", 1.0),
    (ARITH, "12+3=15\n15-5=10\n#### 10[EOS][EOS]", 1.0),   # padding after the answer is ignored
    (ARITH, "#### 10", 1.0),                               # only the final number counts
    (ARITH, "12+3=15\n15-5=11\n#### 11", 0.0),
    (ARITH, "12+3=15\n15-5=10", 0.0),                      # no #### line
    (ARITH, "", 0.0),
    (SPLIT, "2+3=5\n#### 2", 1.0),
    (SPLIT, "1+4=5\n#### 1", 1.0),
    (SPLIT, "4+1=5\n#### 4", 1.0),
    (SPLIT, "2+3=5\n#### 3", 0.0),                         # final line disagrees with the equation
    (SPLIT, "2+2=5\n#### 2", 0.0),                         # wrong sum
    (SPLIT, "0+5=5\n#### 0", 0.0),                         # a bag is empty
    (SPLIT, "3+3=6\n#### 3", 0.0),                         # a valid split of another total
    (SPLIT, "#### 2", 0.0),                                # no equation
    (ORDER, "7,5,3\n#### 753", 1.0),
    (ORDER, "3,7,5\n#### 375", 1.0),
    (ORDER, "5,3,7\n#### 537", 1.0),
    (ORDER, "7,7,3\n#### 773", 0.0),                       # a digit twice
    (ORDER, "7,5,3\n#### 735", 0.0),                       # final number disagrees with the list
    (ORDER, "7,5\n#### 75", 0.0),                          # a digit missing
    (ORDER, "7,5,3,1\n#### 7531", 0.0),                    # a digit too many
    (ORDER, "#### 753", 0.0),                              # no list
])
def test_score(problem, completion, expected):
    assert score(problem, completion) == expected


@pytest.mark.parametrize("text, expected", [
    ("1+2=3\n#### 3", "3"), ("#### 1,234", "1234"), ("#### 4\n#### 5", "5"), ("no answer", None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected
