"""Plot a training run's curves from its ``training.json``: the loss, the held-out loss and the
held-out probe's accuracies (arithmetic, copying) against the step (``--eval-every``).

    python bench/training_curve.py /work/runs/tiny_cot -o sampler/zoo/tiny_cot/training.png
    python bench/training_curve.py sampler/zoo/tiny_cot        # writes DIR/training.png

Prints the last logged figures. Needs matplotlib (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["read_log", "plot", "main"]


ACCURACIES = (("arith_acc", "held-out arithmetic (results of shown operands)", "tab:red"),
              ("copy_acc", "held-out copying (the question's numbers in place)", "tab:orange"))
"""The probe's accuracies: log key, legend, colour."""


def read_log(folder: Path) -> tuple[dict, list[dict]]:
    """(``training.json`` without its log, the log entries in step order, one per step: a
    resumed run logs the steps after its last checkpoint again, and the later entry wins)."""
    path = folder / "training.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: give the --out folder of a training run")
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err.msg}, line {err.lineno})") from None
    log = summary.pop("log", None)
    if not isinstance(log, list) or not log:
        raise ValueError(f"{path} holds no logged steps yet (the run logs every --log-every steps)")
    by_step = {int(entry["step"]): entry for entry in log}
    return summary, [by_step[s] for s in sorted(by_step)]


def plot(summary: dict, log: list[dict], out: Path) -> None:
    """Loss and held-out loss (log scale, left) and the probe's accuracies (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot([e["step"] for e in log], [e["loss"] for e in log], color="tab:blue", lw=1,
            label="training loss")
    probed = [e for e in log if "val_loss" in e]
    if probed:
        ax.plot([e["step"] for e in probed], [e["val_loss"] for e in probed], "o-", ms=3,
                color="tab:cyan", label="held-out loss")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("masked-diffusion loss (log scale)")
    handles, labels = ax.get_legend_handles_labels()
    accuracies = [(key, label, color) for key, label, color in ACCURACIES
                  if any(key in e for e in probed)]
    if accuracies:
        right = ax.twinx()
        for key, label, color in accuracies:
            scored = [e for e in probed if key in e]
            right.plot([e["step"] for e in scored], [100 * e[key] for e in scored], "s-",
                       ms=3, color=color, label=label)
        right.set_ylim(0, 100)
        right.set_ylabel("held-out probe accuracy (%)")
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(handles, labels, fontsize=8, loc="center right")
    config = summary.get("config", {})
    done, steps = summary.get("steps_done", log[-1]["step"]), config.get("steps", "?")
    hours = summary.get("wall_seconds", 0) / 3600
    ax.set_title(f"{Path(config.get('out', '')).name or 'run'}: step {done} of {steps}, "
                 f"{hours:.1f} h, {summary.get('hardware', '')}", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/training_curve.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a training run's --out folder")
    parser.add_argument("-o", "--out", type=Path, default=None,
                        help="PNG to write (default: FOLDER/training.png)")
    args = parser.parse_args(argv)
    out = args.out or args.folder / "training.png"
    if not out.parent.is_dir():
        parser.error(f"folder {out.parent} does not exist; create it first")
    try:
        summary, log = read_log(args.folder)
    except (FileNotFoundError, ValueError) as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    plot(summary, log, out)
    last = log[-1]
    figures = "".join(f", {k} {last[k]:.4f}"
                      for k in ("loss", "val_loss", "arith_acc", "copy_acc") if k in last)
    probed = next((e for e in reversed(log) if "arith_acc" in e), None)
    if probed is not None and probed is not last:
        figures += f" (last probe, step {probed['step']}: arith_acc {probed['arith_acc']:.4f})"
    print(f"step {last['step']}{figures}; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
