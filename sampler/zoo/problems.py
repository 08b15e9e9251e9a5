"""What the bundled tasks (:mod:`~sampler.zoo.arith`, :mod:`~sampler.zoo.cot`) share: the problem
record, GSM8K's final-answer line, and seeded sets that never share a held-out question.

A task module supplies ``make_problem(rng, kind)``, its ``KINDS`` and the ``MIX`` (share of each
kind); :func:`draw_sets` draws sets with exactly that share of each kind, and :func:`stream` draws
an endless training stream that skips the held-out questions. Only the standard library is used.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

__all__ = ["Problem", "MakeProblem", "extract_answer", "answer_lines", "draw_sets", "stream"]


@dataclass(frozen=True)
class Problem:
    """One problem: its ``kind``, the ``question``, a reference ``answer`` (GSM8K format: working,
    then ``#### N``), and in ``meta`` what the validator of its kind needs."""

    kind: str
    question: str
    answer: str
    meta: dict[str, Any] = field(hash=False, compare=False)


MakeProblem = Callable[[random.Random, str], Problem]
"""``make(rng, kind)``: one problem of ``kind``, drawn with ``rng``."""

_FINAL = re.compile(r"####\s*(-?[\d,]+)")


def extract_answer(completion: str) -> str | None:
    """The number after the last ``####`` (commas removed), or ``None``."""
    found = _FINAL.findall(completion)
    return found[-1].replace(",", "") if found else None


def answer_lines(completion: str) -> list[str]:
    """The non-empty lines of ``completion``, stripped."""
    return [line.strip() for line in completion.strip().splitlines() if line.strip()]


def draw_sets(rng: random.Random, make: MakeProblem, kinds: Sequence[str],
              mix: Mapping[str, float], sizes: Sequence[tuple[str, int]],
              held_out: set[str]) -> dict[str, list[Problem]]:
    """Sets named and sized by ``sizes``, drawn in that order, each with the ``mix`` share of every
    kind (the last kind takes the rounding remainder), shuffled.

    A set named ``"train"`` only skips the questions in ``held_out`` (and may repeat its own);
    every other set is held out: its questions are distinct, skip ``held_out``, and are added to it.
    """
    out: dict[str, list[Problem]] = {}
    for name, size in sizes:
        problems: list[Problem] = []
        for kind in kinds:
            want = size - len(problems) if kind == kinds[-1] else round(size * mix[kind])
            tries, got = 0, 0
            while got < want:
                tries += 1
                if tries > 100 * want + 10_000:
                    raise ValueError(f"ran out of distinct {kind!r} questions for the {name!r} set "
                                     f"({got} of {want}); ask for fewer held-out problems")
                problem = make(rng, kind)
                if problem.question in held_out:
                    continue
                if name != "train":
                    held_out.add(problem.question)
                problems.append(problem)
                got += 1
        rng.shuffle(problems)
        out[name] = problems
    return out


def stream(rng: random.Random, make: MakeProblem, kinds: Sequence[str], mix: Mapping[str, float],
           held_out: set[str]) -> Iterator[Problem]:
    """Endless problems whose kind is drawn with the ``mix`` weights, skipping ``held_out``."""
    weights = [mix[k] for k in kinds]
    while True:
        problem = make(rng, rng.choices(kinds, weights=weights)[0])
        if problem.question not in held_out:
            yield problem
