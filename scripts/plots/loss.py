"""Training runs: the paper-style loss figure — training loss EMA-smoothed
(0.9, as DeepSeek-V3's figures smooth) and held-out main-model loss, all runs
of the file overlaid — and the held-out loss per domain."""
import os

import matplotlib.pyplot as plt

from plots._common import ema, label, runs, save, style_step_axes


def _train_runs(f):
    return [(n, r) for n, r in runs(f) if "train" in r and "loss" in r["train"] and r["train"]["loss"].shape[0] > 0]


def applies(f):
    return bool(_train_runs(f))


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def plot(f, out_dir):
    written = []
    fig, (ax_train, ax_eval) = plt.subplots(1, 2, figsize=(11, 4))
    for name, run in _train_runs(f):
        t = run["train"]
        ax_train.plot(t["step"][()], ema(t["loss"][()], 0.9), label=label(name, run))
        if "eval" in run and "loss" in run["eval"] and run["eval"]["loss"].shape[0] > 0:
            e = run["eval"]
            ax_eval.plot(e["step"][()], e["loss"][()], marker="o", ms=3, label=label(name, run))
    ax_train.set_title("training loss, main model (EMA 0.9)")
    ax_eval.set_title("held-out loss, main model")
    style_step_axes((ax_train, ax_eval), "cross-entropy (nats/token)")
    fig.tight_layout()
    path = save(fig, out_dir, "loss.png")
    written.append(path)

    with_domains = [(n, r) for n, r in _train_runs(f) if "eval" in r and "loss_by_domain" in r["eval"]
                    and r["eval"]["loss_by_domain"].shape[0] > 0]
    if with_domains:
        domains = _text(with_domains[0][1]["eval"].attrs.get("domain_names", "")).split(",")
        fig, axes = plt.subplots(1, len(domains), figsize=(4.2 * len(domains), 3.6), squeeze=False)
        for d, ax in enumerate(axes[0]):
            for name, run in with_domains:
                e = run["eval"]
                ax.plot(e["step"][()], e["loss_by_domain"][:, d], marker="o", ms=3, label=label(name, run))
            ax.set_title(f"held-out loss: {domains[d] if d < len(domains) else d}")
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        path = save(fig, out_dir, "loss_by_domain.png")
        written.append(path)
    return written
