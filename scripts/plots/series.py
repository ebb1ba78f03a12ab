"""Per-step scalar series (train/*, eval/*) of every run, one figure per
group, all runs overlaid; loss curves EMA-smoothed (0.9) like the paper's."""
import os

import matplotlib.pyplot as plt

from plots._common import ema, label, runs, save

GROUPS = ("train", "eval")


def _series(group):
    """Names of the 1-D numeric datasets of a group, step excluded."""
    return [n for n, d in group.items()
            if hasattr(d, "shape") and len(d.shape) == 1 and d.shape[0] > 0 and n != "step"]


def applies(f):
    return any(g in run and _series(run[g]) for _, run in runs(f) for g in GROUPS)


def plot(f, out_dir):
    written = []
    for g in GROUPS:
        names = sorted({n for _, run in runs(f) if g in run for n in _series(run[g])})
        if not names:
            continue
        cols = min(3, len(names))
        rows = (len(names) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows), squeeze=False)
        for ax, name in zip(axes.flat, names):
            for run_name, run in runs(f):
                if g not in run or name not in run[g]:
                    continue
                y = run[g][name][()]
                x = run[g]["step"][()] if "step" in run[g] else range(len(y))
                smooth = 0.9 if "loss" in name and g == "train" else 0.0
                ax.plot(x[:len(y)], ema(y, smooth), label=label(run_name, run))
            ax.set_title(f"{g}/{name}" + (" (EMA 0.9)" if "loss" in name and g == "train" else ""))
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=8)
        fig.tight_layout()
        path = save(fig, out_dir, f"{g}.png")
        written.append(path)
    return written
