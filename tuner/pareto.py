"""Pareto fronts of a study's trials on (max accuracy, min mean NFE), and their hypervolume."""

from __future__ import annotations

from typing import Any

from optuna.trial import FrozenTrial, TrialState

__all__ = ["trial_metrics", "dominates", "front", "hypervolume"]


def trial_metrics(trial: FrozenTrial) -> dict[str, Any]:
    """The figures a trial recorded (empty for a trial that never finished its evaluation)."""
    return dict(trial.user_attrs.get("metrics", {}))


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether point ``a`` = (accuracy, NFE) dominates ``b``: at least as accurate and as cheap,
    and strictly better in one."""
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def front(trials: list[FrozenTrial], *, feasible_only: bool = True) -> list[FrozenTrial]:
    """Pareto-optimal complete trials on (max accuracy, min mean NFE), lowest NFE first."""
    points = []
    for t in trials:
        m = trial_metrics(t)
        if t.state != TrialState.COMPLETE or not m.get("complete"):
            continue
        if feasible_only and not m.get("feasible", True):
            continue
        points.append((t, (m["accuracy"], m["mean_nfe"])))
    out = [(p[1], -p[0], t.number, t) for t, p in points
           if not any(dominates(q, p) for _, q in points)]
    return [t for *_, t in sorted(out)]


def hypervolume(points: list[tuple[float, float]]) -> float:
    """Area dominated by ``(accuracy, nfe_fraction)`` points, ``nfe_fraction`` being mean NFE over
    full-step mean NFE, against the reference point (accuracy 0, fraction 1): 1.0 would be every
    answer right at no cost, full-step alone scores 0. Any points, dominated ones included."""
    pts = sorted((min(max(f, 0.0), 1.0), max(a, 0.0)) for a, f in points if f < 1.0)
    area, best_acc = 0.0, 0.0
    # sweep from the cheapest point: each point adds the accuracy it improves over the cheaper ones
    for i, (frac, acc) in enumerate(pts):
        best_acc = max(best_acc, acc)
        next_frac = pts[i + 1][0] if i + 1 < len(pts) else 1.0
        area += best_acc * (next_frac - frac)
    return area
