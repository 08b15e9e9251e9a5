"""The ``arith`` task: short GSM8K-format word problems for the bundled model.

Every problem has a ``question`` and an ``answer`` written the GSM8K way: lines of working (here,
equations) and a final line ``#### N``. Three kinds are mixed:

- ``arith``: add and subtract one-digit numbers in one or two steps (every value within
  0..18); one right answer.
- ``split``: share N things between two non-empty bags; *any* ``a+b=N`` with ``a, b >= 1`` is right,
  as long as the final line repeats ``a``.
- ``order``: write the given digits, each once, in any order; *any* permutation is right, as long as
  the final number repeats the listed digits.

The free-choice kinds are what make parallel decoding risky: their answer positions are each
uncertain on their own but must agree with each other, so committing several of them in one step
from their marginals (``3+3=7``, ``5,5,2``) gives invalid answers, while committing one at a time
conditions every choice on the previous ones. Plain arithmetic alone has no such trade-off.

Only the standard library is used. ``GEN_LENGTH`` bounds every answer (in characters, which are the
bundled tokenizer's tokens); ``BLOCK_LENGTH`` is the block size the bundled model is evaluated with.
"""

from __future__ import annotations

import random
import re
from typing import Callable

from .problems import Problem, answer_lines, draw_sets, extract_answer

__all__ = [
    "GEN_LENGTH",
    "BLOCK_LENGTH",
    "KINDS",
    "ALPHABET",
    "ArithProblem",
    "make_problem",
    "make_splits",
    "extract_answer",
    "score",
]

GEN_LENGTH = 32
"""Generated characters per answer: every answer fits, the rest is end-of-text padding."""

BLOCK_LENGTH = 32
"""Recommended block length for decoding (one block: the answers are short)."""

KINDS = ("arith", "split", "order")
MAX_VALUE = 18
"""``arith``: operands 1-9, and every intermediate and final value stays within 0..MAX_VALUE."""
MAX_TOTAL = 12
"""``split``: totals 3..MAX_TOTAL."""
MIX = {"arith": 0.5, "split": 0.3, "order": 0.2}
"""Share of each kind in every split."""

NAMES = ("Ann", "Bob", "Sam", "Mia", "Tom", "Eva", "Max", "Zoe", "Leo", "Ivy")
ITEMS = ("apples", "pens", "cards", "eggs", "books", "coins")
GAINS = ("gets", "buys", "finds")
LOSSES = ("loses", "sells", "uses")

ALPHABET = "".join(sorted(set(
    "0123456789+-=#,.? \n"
    + "".join(NAMES) + "".join(ITEMS) + "".join(GAINS) + "".join(LOSSES)
    + "has many now How puts in bags none empty bag one writes any order What number"
)))
"""Every character a question or an answer can contain."""

ArithProblem = Problem
"""One problem (:class:`~sampler.zoo.problems.Problem`). ``meta`` holds what the validator needs
for its ``kind``: ``arith``: ``{"target": int}``; ``split``: ``{"total": int}``; ``order``:
``{"digits": str}``."""


def _arith(rng: random.Random) -> ArithProblem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    start = value = rng.randint(1, 9)
    clauses, lines = [], []
    for _ in range(rng.randint(1, 2)):
        delta = rng.randint(1, 9)
        if value + delta > MAX_VALUE or (delta <= value and rng.random() < 0.5):
            delta = min(delta, value)
            verb, sign, new = rng.choice(LOSSES), "-", value - delta
        else:
            verb, sign, new = rng.choice(GAINS), "+", value + delta
        clauses.append(f"{verb} {delta}")
        lines.append(f"{value}{sign}{delta}={new}")
        value = new
    question = f"{name} has {start} {item}, {', '.join(clauses)}. How many now?"
    answer = "\n".join(lines) + f"\n#### {value}"
    return ArithProblem("arith", question, answer, {"target": value})


def _split(rng: random.Random) -> ArithProblem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    total = rng.randint(3, MAX_TOTAL)
    first = rng.randint(1, total - 1)
    question = f"{name} puts {total} {item} in 2 bags, none empty. How many in bag one?"
    answer = f"{first}+{total - first}={total}\n#### {first}"
    return ArithProblem("split", question, answer, {"total": total})


def _order(rng: random.Random) -> ArithProblem:
    name = rng.choice(NAMES)
    digits = rng.sample("123456789", rng.randint(2, 4))
    shown = list(digits)
    rng.shuffle(shown)
    question = f"{name} writes {', '.join(digits)} in any order. What number?"
    answer = ",".join(shown) + f"\n#### {''.join(shown)}"
    return ArithProblem("order", question, answer, {"digits": "".join(digits)})


_MAKERS: dict[str, Callable[[random.Random], ArithProblem]] = {
    "arith": _arith, "split": _split, "order": _order,
}


def make_problem(rng: random.Random, kind: str | None = None) -> ArithProblem:
    """Draw one problem, of ``kind`` or of a kind drawn from ``MIX``."""
    if kind is None:
        kind = rng.choices(KINDS, weights=[MIX[k] for k in KINDS])[0]
    if kind not in _MAKERS:
        raise ValueError(f"unknown problem kind {kind!r}; known kinds: {', '.join(KINDS)}")
    return _MAKERS[kind](rng)


def make_splits(*, seed: int = 0, n_train: int = 50_000, n_tune: int = 400,
                n_test: int = 600) -> dict[str, list[ArithProblem]]:
    """``train`` / ``tune`` / ``test`` sets, reproducible from ``seed``, disjoint by question text.

    The held-out sets are drawn first, each question at most once in and across them, so they do
    not change when ``n_train`` does. ``train`` never contains a held-out question but may repeat
    its own questions: a free-choice question seen twice with two different valid answers is how
    the model learns that both are right. Every set keeps the ``MIX`` share of each kind.
    """
    sets = draw_sets(random.Random(seed), make_problem, KINDS, MIX,
                     (("test", n_test), ("tune", n_tune), ("train", n_train)), held_out=set())
    return {"train": sets["train"], "tune": sets["tune"], "test": sets["test"]}


def _valid_arith(problem: ArithProblem, completion: str) -> bool:
    return extract_answer(completion) == str(problem.meta["target"])


def _valid_split(problem: ArithProblem, completion: str) -> bool:
    lines = answer_lines(completion)
    match = re.fullmatch(r"(\d+)\+(\d+)=(\d+)", lines[0]) if lines else None
    if match is None:
        return False
    first, second, total = (int(g) for g in match.groups())
    return (first >= 1 and second >= 1 and first + second == total == problem.meta["total"]
            and extract_answer(completion) == str(first))


def _valid_order(problem: ArithProblem, completion: str) -> bool:
    lines = answer_lines(completion)
    if not lines:
        return False
    listed = lines[0].split(",")
    return (sorted(listed) == sorted(problem.meta["digits"])
            and extract_answer(completion) == "".join(listed))


_VALIDATORS: dict[str, Callable[[ArithProblem, str], bool]] = {
    "arith": _valid_arith, "split": _valid_split, "order": _valid_order,
}


def score(problem: ArithProblem, completion: str) -> float:
    """1.0 when ``completion`` (the generated answer text) is a valid answer to ``problem``, else 0.0.

    ``arith`` needs the exact number on the ``####`` line. ``split`` needs a first line ``a+b=N``
    with ``a, b >= 1`` and the final line ``#### a``. ``order`` needs a first line listing the
    given digits once each, comma-separated, in any order, and the final line repeating them.
    Text after the ``####`` line's number (end-of-text padding) is ignored.
    """
    return float(_VALIDATORS[problem.kind](problem, completion))
