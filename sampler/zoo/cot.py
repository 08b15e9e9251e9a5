"""The ``cot`` task: multi-step word problems whose answers are a chain of equations.

Every problem has a ``question`` and an ``answer`` written the GSM8K way: one equation per line,
then ``#### N``. Numbers in the questions have two digits, so a small model makes real mistakes
(its full-step accuracy stays well below 100%, as a real model's does on GSM8K). Three kinds:

- ``chain``: ``Ann has 4 boxes of 23 pens, sells 15, buys 32. How many now?`` -> ``4*23=92``,
  ``92-15=77``, ``77+32=109``, ``#### 109``: 3-6 equations, each using the previous result, in
  the order of the question; one right answer.
- ``sum``: ``Ann has 23 pens, Bob has 41, Sam has 17. How many in all?`` -> a running sum over
  the 3-5 people *in any order* (``23+17=40``, ``40+41=81``, ``#### 81``): several valid answers
  whose tokens must agree with each other.
- ``pair``: ``Ann has 23 pens and buys 12. Bob has 41 and sells 15. How many together?`` -> the
  two sub-totals *in either order*, then their sum (``41-15=26``, ``23+12=35``, ``26+35=61``).

Later tokens depend on earlier ones (each equation starts from the previous result) and the
free-order kinds punish committing several positions from their marginals at once: the regime in
which real chain-of-thought decoding trades steps for accuracy.

The validator (:func:`score`) accepts a completion when (1) it has a ``####`` line whose number is
the right answer, (2) every line before it is an equation ``a op b = c`` (op ``+ - *``,
non-negative integers without leading zeros) that is true, with ``c`` of the last equation equal to
the final number, and (3) the equations are the chain the question calls for: the kind's exact
number of equations, each using the question's numbers and the previous results as described
above (``+`` and ``*`` may have their operands either way round; anything after the final number,
such as end-of-text padding, is ignored). Only the standard library is used.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from itertools import islice
from typing import Any, Callable, Iterator

from .arith import GAINS, ITEMS, LOSSES, NAMES
from .problems import Problem, answer_lines, draw_sets, extract_answer, stream

__all__ = [
    "GEN_LENGTH",
    "BLOCK_LENGTH",
    "KINDS",
    "MIX",
    "ALPHABET",
    "CotProblem",
    "make_problem",
    "make_splits",
    "train_stream",
    "extract_answer",
    "parse_chain",
    "score",
]

GEN_LENGTH = 128
"""Generated tokens (characters) per answer: 4 blocks; every answer fits in the first 80."""

BLOCK_LENGTH = 32
"""The block length of the semi-autoregressive decoding the model is evaluated with."""

KINDS = ("chain", "sum", "pair")
MIX = {"chain": 0.4, "sum": 0.3, "pair": 0.3}
"""Share of each kind in every set (and the kind weights of the training stream)."""

LOW, HIGH = 10, 99
"""Every count and amount in a question has two digits."""
MAX_VALUE = 999
"""``chain``: no value (start, intermediate or final) goes above this, nor below 0."""
BOXES = (2, 9)
PER_BOX = (11, 49)
CHAIN_STEPS = (2, 5)
"""``chain``: boxes x per box, then 2-5 gains or losses: 3-6 equations."""
PEOPLE = (3, 5)
"""``sum``: people summed (2-4 equations)."""

CotProblem = Problem
"""One problem (:class:`~sampler.zoo.problems.Problem`). ``meta`` holds ``target`` (the answer)
and, per kind, ``chain``: ``boxes``, ``per_box``, ``steps`` (``[sign, amount]`` in order);
``sum``: ``counts``; ``pair``: ``people`` (two ``[count, sign, amount]``)."""

_ALPHABET_WORDS = ("has boxes of and How many now in all together"
                   + " " + " ".join(NAMES + ITEMS + GAINS + LOSSES))
ALPHABET = "".join(sorted(set("0123456789+-*=#,.? \n" + _ALPHABET_WORDS)))
"""Every character a question or an answer can contain."""

_OPS: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
_NUMBER = r"(0|[1-9]\d*)"
_EQUATION = re.compile(rf"{_NUMBER}\s*([+\-*])\s*{_NUMBER}\s*=\s*{_NUMBER}")
_FINAL_LINE = re.compile(rf"\s*{_NUMBER}")


def _step(rng: random.Random, value: int) -> tuple[str, str, int]:
    """(verb, sign, amount) of one gain or loss that keeps ``value`` within 0..MAX_VALUE."""
    amount = rng.randint(LOW, HIGH)
    can_gain, can_lose = value + amount <= MAX_VALUE, amount <= value
    if can_lose and (not can_gain or rng.random() < 0.5):
        return rng.choice(LOSSES), "-", amount
    return rng.choice(GAINS), "+", amount


def _chain(rng: random.Random) -> Problem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    boxes, per_box = rng.randint(*BOXES), rng.randint(*PER_BOX)
    value = boxes * per_box
    clauses, lines, steps = [], [f"{boxes}*{per_box}={value}"], []
    for _ in range(rng.randint(*CHAIN_STEPS)):
        verb, sign, amount = _step(rng, value)
        new = _OPS[sign](value, amount)
        clauses.append(f"{verb} {amount}")
        lines.append(f"{value}{sign}{amount}={new}")
        steps.append([sign, amount])
        value = new
    question = f"{name} has {boxes} boxes of {per_box} {item}, {', '.join(clauses)}. How many now?"
    return Problem("chain", question, "\n".join(lines) + f"\n#### {value}",
                   {"boxes": boxes, "per_box": per_box, "steps": steps, "target": value})


def _sum(rng: random.Random) -> Problem:
    names, item = rng.sample(NAMES, rng.randint(*PEOPLE)), rng.choice(ITEMS)
    counts = [rng.randint(LOW, HIGH) for _ in names]
    clauses = [f"{names[0]} has {counts[0]} {item}"] + [
        f"{n} has {c}" for n, c in zip(names[1:], counts[1:])]
    order = rng.sample(counts, len(counts))
    value, lines = order[0], []
    for count in order[1:]:
        lines.append(f"{value}+{count}={value + count}")
        value += count
    question = f"{', '.join(clauses)}. How many in all?"
    return Problem("sum", question, "\n".join(lines) + f"\n#### {value}",
                   {"counts": counts, "target": value})


def _pair(rng: random.Random) -> Problem:
    names, item = rng.sample(NAMES, 2), rng.choice(ITEMS)
    people, clauses = [], []
    for i, name in enumerate(names):
        count = rng.randint(LOW, HIGH)
        verb, sign, amount = _step(rng, count)
        people.append([count, sign, amount])
        clauses.append(f"{name} has {count}{f' {item}' if i == 0 else ''} and {verb} {amount}")
    totals = [_OPS[s](c, a) for c, s, a in people]
    first = rng.randrange(2)
    lines = [f"{people[i][0]}{people[i][1]}{people[i][2]}={totals[i]}" for i in (first, 1 - first)]
    lines.append(f"{totals[first]}+{totals[1 - first]}={sum(totals)}")
    question = f"{'. '.join(clauses)}. How many together?"
    return Problem("pair", question, "\n".join(lines) + f"\n#### {sum(totals)}",
                   {"people": people, "target": sum(totals)})


_MAKERS: dict[str, Callable[[random.Random], Problem]] = {
    "chain": _chain, "sum": _sum, "pair": _pair,
}


def make_problem(rng: random.Random, kind: str | None = None) -> Problem:
    """Draw one problem, of ``kind`` or of a kind drawn from ``MIX``."""
    if kind is None:
        kind = rng.choices(KINDS, weights=[MIX[k] for k in KINDS])[0]
    if kind not in _MAKERS:
        raise ValueError(f"unknown problem kind {kind!r}; known kinds: {', '.join(KINDS)}")
    return _MAKERS[kind](rng)


def _held_out(seed: int, n_tune: int, n_test: int
              ) -> tuple[random.Random, dict[str, list[Problem]], set[str]]:
    rng, held_out = random.Random(seed), set()
    sets = draw_sets(rng, make_problem, KINDS, MIX, (("test", n_test), ("tune", n_tune)), held_out)
    return rng, sets, held_out


def train_stream(*, seed: int = 0, n_tune: int = 400, n_test: int = 600) -> Iterator[Problem]:
    """The endless training stream of ``seed``: kinds drawn with the ``MIX`` weights, never a
    question of the held-out sets of :func:`make_splits` (same seed and held-out sizes), free-order
    questions with a fresh valid order each time they come up."""
    rng, _, held_out = _held_out(seed, n_tune, n_test)
    return stream(rng, make_problem, KINDS, MIX, held_out)


def make_splits(*, seed: int = 0, n_train: int = 10_000, n_tune: int = 400,
                n_test: int = 600) -> dict[str, list[Problem]]:
    """``train`` / ``tune`` / ``test`` sets, reproducible from ``seed``, disjoint by question text.

    The held-out sets (``test`` first, then ``tune``) are drawn first, each question at most once
    in and across them, each with exactly the ``MIX`` share of every kind; they do not change with
    ``n_train``. ``train`` is the first ``n_train`` problems of :func:`train_stream`.
    """
    rng, sets, held_out = _held_out(seed, n_tune, n_test)
    train = list(islice(stream(rng, make_problem, KINDS, MIX, held_out), n_train))
    return {"train": train, "tune": sets["tune"], "test": sets["test"]}


Equation = tuple[int, str, int, int]


def parse_chain(completion: str) -> tuple[list[Equation], int] | None:
    """(equations ``(a, op, b, c)``, final number) of a completion whose every line before its
    first ``####`` is a true equation and whose final number is the last equation's result; else
    ``None``. Text after the final number is ignored."""
    working, sep, rest = completion.partition("####")
    final = _FINAL_LINE.match(rest) if sep else None
    if final is None:
        return None
    equations: list[Equation] = []
    for line in answer_lines(working):
        match = _EQUATION.fullmatch(line)
        if match is None:
            return None
        a, op, b, c = int(match[1]), match[2], int(match[3]), int(match[4])
        if _OPS[op](a, b) != c:
            return None
        equations.append((a, op, b, c))
    if not equations or equations[-1][3] != int(final[1]):
        return None
    return equations, int(final[1])


def _is(eq: Equation, x: int, op: str, y: int) -> bool:
    """``eq`` computes ``x op y`` (or ``y op x`` when ``op`` commutes)."""
    a, eq_op, b, _ = eq
    return eq_op == op and ((a, b) == (x, y) or (op != "-" and (a, b) == (y, x)))


def _chain_ok(meta: dict[str, Any], eqs: list[Equation]) -> bool:
    steps = meta["steps"]
    if len(eqs) != 1 + len(steps) or not _is(eqs[0], meta["boxes"], "*", meta["per_box"]):
        return False
    return all(_is(eq, prev[3], sign, amount)
               for eq, prev, (sign, amount) in zip(eqs[1:], eqs, steps))


def _sum_ok(meta: dict[str, Any], eqs: list[Equation]) -> bool:
    counts = meta["counts"]
    if len(eqs) != len(counts) - 1:
        return False
    left = Counter(counts)  # the counts not added yet: each must be used exactly once
    a, op, b, _ = eqs[0]
    left.subtract([a, b])
    if op != "+" or min(left.values()) < 0:
        return False
    for prev, (a, op, b, _) in zip(eqs, eqs[1:]):
        if op != "+":
            return False
        if a == prev[3] and left[b] > 0:
            left[b] -= 1
        elif b == prev[3] and left[a] > 0:
            left[a] -= 1
        else:
            return False
    return True


def _pair_ok(meta: dict[str, Any], eqs: list[Equation]) -> bool:
    if len(eqs) != 3:
        return False
    (c0, s0, a0), (c1, s1, a1) = meta["people"]
    in_order = _is(eqs[0], c0, s0, a0) and _is(eqs[1], c1, s1, a1)
    swapped = _is(eqs[0], c1, s1, a1) and _is(eqs[1], c0, s0, a0)
    return (in_order or swapped) and _is(eqs[2], eqs[0][3], "+", eqs[1][3])


_CONSISTENT: dict[str, Callable[[dict[str, Any], list[Equation]], bool]] = {
    "chain": _chain_ok, "sum": _sum_ok, "pair": _pair_ok,
}


def score(problem: Problem, completion: str) -> float:
    """1.0 when ``completion`` (the generated answer text) is a valid answer to ``problem``, else
    0.0: the right final number, every equation true, and the chain the question calls for (see
    the module docstring for exactly what counts)."""
    parsed = parse_chain(completion)
    if parsed is None:
        return 0.0
    equations, final = parsed
    return float(final == problem.meta["target"]
                 and _CONSISTENT[problem.kind](problem.meta, equations))
