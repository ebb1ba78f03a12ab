"""Helpers shared by the plot modules."""
import os

import matplotlib.pyplot as plt
import numpy as np


def runs(f):
    """(name, group) of every run in a results file, in file order."""
    if "runs" not in f:
        return []
    return [(name, f["runs"][name]) for name in f["runs"]]


def ema(values, coefficient):
    """Exponential moving average, as the paper's figures smooth loss curves."""
    values = np.asarray(values, dtype=float)
    if coefficient <= 0 or len(values) == 0:
        return values
    out = np.empty_like(values)
    acc = values[0]
    for i, v in enumerate(values):
        acc = coefficient * acc + (1 - coefficient) * v
        out[i] = acc
    return out


def label(name, group):
    status = group.attrs.get("status", b"")
    if isinstance(status, bytes):
        status = status.decode()
    return name if status == "complete" else f"{name} ({status})"


def style_step_axes(axes, ylabel):
    """Per-step curves: step on x, ylabel on y, a light grid and a legend."""
    for ax in axes:
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)


def save(fig, out_dir, filename, dpi=110):
    """Writes fig as out_dir/filename, closes it, returns the path."""
    path = os.path.join(out_dir, filename)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
