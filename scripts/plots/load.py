"""Expert load of training runs: MaxVio_batch per step (mean over MoE layers,
EMA-smoothed like the Loss-Free Balancing paper's Figure 3), MaxVio_global at
each evaluation, and per-domain relative expert load heatmaps (actual load /
balanced load, DeepSeek-V3 Figure 9) from the last evaluation."""
import os

import matplotlib.pyplot as plt
import numpy as np

from plots._common import ema, label, runs, save, style_step_axes


def _load_runs(f):
    return [(n, r) for n, r in runs(f) if "load" in r and "maxvio" in r["load"] and r["load"]["maxvio"].shape[0] > 0]


def applies(f):
    return bool(_load_runs(f))


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _layer_names(run, count):
    ids = run["load"].attrs.get("layer_ids", None)
    if ids is None or len(ids) != count:
        return [str(i) for i in range(count)]
    return [str(int(i)) for i in ids]


def plot(f, out_dir):
    written = []
    fig, (ax_batch, ax_global) = plt.subplots(1, 2, figsize=(11, 4))
    for name, run in _load_runs(f):
        maxvio = run["load"]["maxvio"][()]
        steps = run["train"]["step"][()][: maxvio.shape[0]] if "train" in run else np.arange(maxvio.shape[0])
        ax_batch.plot(steps, ema(maxvio.mean(axis=1), 0.9), label=label(name, run))
        if "eval" in run and "maxvio_global" in run["eval"] and run["eval"]["maxvio_global"].shape[0] > 0:
            g = run["eval"]["maxvio_global"][()]
            ax_global.plot(run["eval"]["step"][()], g.mean(axis=1), marker="o", ms=3, label=label(name, run))
    ax_batch.set_title("MaxVio_batch, mean over MoE layers (EMA 0.9)")
    ax_global.set_title("MaxVio_global on the held-out set, mean over layers")
    style_step_axes((ax_batch, ax_global), "(max load − mean) / mean")
    fig.tight_layout()
    path = save(fig, out_dir, "maxvio.png")
    written.append(path)

    # Domain x expert heatmaps, one column per run, one row per MoE layer.
    heat = [(n, r) for n, r in _load_runs(f) if "eval" in r and "expert_tokens_by_domain" in r["eval"]
            and r["eval"]["expert_tokens_by_domain"].shape[0] > 0]
    if heat:
        layers = heat[0][1]["eval"]["expert_tokens_by_domain"].shape[1]
        fig, axes = plt.subplots(layers, len(heat), figsize=(4.5 * len(heat) + 1, 1.6 * layers + 1),
                                 squeeze=False)
        image = None
        # One colour scale for every panel so runs compare (the paper uses 0-10).
        vmax = 3.0
        for _, run in heat:
            x = run["eval"]["expert_tokens_by_domain"][-1]
            mean = x.mean(axis=2, keepdims=True)
            vmax = max(vmax, float(np.divide(x, mean, out=np.zeros_like(x, dtype=float), where=mean > 0).max()))
        for c, (name, run) in enumerate(heat):
            tokens = run["eval"]["expert_tokens_by_domain"][-1]  # [layers, domains, experts]
            domains = _text(run["eval"].attrs.get("domain_names", "")).split(",")
            names = _layer_names(run, tokens.shape[0])
            for l in range(min(layers, tokens.shape[0])):
                x = tokens[l]
                mean = x.mean(axis=1, keepdims=True)
                rel = np.divide(x, mean, out=np.zeros_like(x, dtype=float), where=mean > 0)
                ax = axes[l][c]
                image = ax.imshow(rel, aspect="auto", cmap="viridis", vmin=0, vmax=vmax)
                ax.set_yticks(range(len(domains)))
                ax.set_yticklabels(domains, fontsize=7)
                ax.set_xticks(range(x.shape[1]))
                ax.set_xticklabels(range(x.shape[1]), fontsize=6)
                ax.set_title(f"{label(name, run)}: layer {names[l]}", fontsize=8)
        fig.suptitle("relative expert load (actual / balanced) by domain, last evaluation", fontsize=9)
        fig.tight_layout()
        fig.colorbar(image, ax=axes, shrink=0.6)
        path = save(fig, out_dir, "expert_load_by_domain.png")
        written.append(path)
    return written
