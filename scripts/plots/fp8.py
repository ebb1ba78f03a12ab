"""FP8 figures.

1. GEMM error against K (moelab fp8 errcurve): one line per (acc_bits,
   promote) setting, log-log, for the normwise error, the maximum error over
   the output RMS and the mean elementwise relative error; the paper's anchor
   (DeepSeek-V3 §3.3.2: ~2% at K = 4096 without promotion) is marked.
2. FP8 training (experiments/paper/fp8_*.ini): training runs of one file that
   differ in numerics.* keys; the first run is the baseline and every other
   run's relative loss difference (L - L_base) / L_base is drawn over steps,
   EMA-smoothed (0.9) like the paper's Figure 10, with the paper's 0.25% band.
"""
import os

import matplotlib.pyplot as plt
import numpy as np

from plots._common import runs, save

METRICS = (("normwise", "||c - c*|| / ||c*||"),
           ("max_err_over_rms", "max |c - c*| / rms(c*)"),
           ("mean_rel", "mean |c - c*| / |c*|"))


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _curves(run):
    return run["fp8/errcurve"] if "fp8/errcurve" in run else None


def _numerics_runs(f):
    """Training runs carrying numerics.* keys, when more than one differ in them."""
    out = [(name, run) for name, run in runs(f)
           if "numerics.gemm" in run.attrs and "train" in run and "loss" in run["train"]]
    keys = lambda run: tuple(_text(run.attrs[k]) for k in sorted(run.attrs) if k.startswith("numerics."))
    return out if len({keys(run) for _, run in out}) > 1 else []


def applies(f):
    return any(_curves(run) is not None for _, run in runs(f)) or bool(_numerics_runs(f))


def _plot_relative_loss(f, out_dir):
    from plots._common import ema
    numeric_runs = _numerics_runs(f)
    base_name, base = numeric_runs[0]
    base_loss = base["train/loss"][()]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0))
    for name, run in numeric_runs:
        loss = run["train/loss"][()]
        steps = run["train/step"][()] if "step" in run["train"] else np.arange(len(loss))
        axes[0].plot(steps, ema(loss, 0.9), label=name)
        if name == base_name:
            continue
        n = min(len(loss), len(base_loss))
        rel = ema((loss[:n] - base_loss[:n]) / base_loss[:n], 0.9)
        axes[1].plot(steps[:n], 100 * rel, label=f"{name} vs {base_name}")
    axes[0].set_title("training loss (EMA 0.9)")
    axes[0].set_xlabel("step")
    axes[0].legend(fontsize=7)
    for y in (0.25, -0.25):
        axes[1].axhline(y, color="gray", lw=0.8, ls=":")
    axes[1].annotate("paper: FP8 vs BF16 within 0.25%", (0, 0.25), fontsize=7, color="gray", va="bottom")
    axes[1].set_title("relative loss difference, % (EMA 0.9)")
    axes[1].set_xlabel("step")
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = save(fig, out_dir, "fp8_relative_loss.png")
    return [path]


def _setting_label(acc_bits, promote, fp32_code):
    acc = "FP32 acc" if acc_bits == fp32_code else f"F={acc_bits}"
    return f"{acc}, " + ("no promotion" if promote == 0 else f"promote {promote}")


def plot(f, out_dir):
    written = _plot_relative_loss(f, out_dir) if _numerics_runs(f) else []
    for run_name, run in runs(f):
        g = _curves(run)
        if g is None:
            continue
        k = g["k"][()]
        acc_bits = g["acc_bits"][()]
        promote = g["promote"][()]
        fp32_code = int(g.attrs.get("acc_bits_fp32", -1))
        settings = sorted(set(zip(acc_bits.tolist(), promote.tolist())),
                          key=lambda s: (s[0] == fp32_code, s[0], s[1]))
        fig, axes = plt.subplots(1, len(METRICS), figsize=(5.2 * len(METRICS), 4.0))
        for ax, (metric, ylabel) in zip(axes, METRICS):
            values = g[metric][()]
            for bits, prom in settings:
                sel = (acc_bits == bits) & (promote == prom)
                order = np.argsort(k[sel])
                style = "--" if prom == 0 else "-"
                ax.plot(k[sel][order], values[sel][order], style, marker="o", ms=3,
                        label=_setting_label(bits, prom, fp32_code))
            if metric == "max_err_over_rms":
                ax.axhline(0.02, color="gray", lw=0.8, ls=":")
                ax.annotate("paper: ~2% at K=4096, no promotion", (k.min(), 0.02), fontsize=7,
                            color="gray", va="bottom")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("K (inner dimension)")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3, which="both")
        axes[0].legend(fontsize=7)
        dist = _text(g.attrs.get("dist", run.attrs.get("dist", "?")))
        quant = _text(run.attrs.get("quant", "?"))
        m, n = _text(run.attrs.get("m", "?")), _text(run.attrs.get("n", "?"))
        trials = _text(run.attrs.get("trials", "?"))
        fig.suptitle(f"emulated FP8 GEMM error vs K: inputs {dist}, E4M3 {quant} scales, c [{m}, {n}], "
                     f"mean of {trials} trials, against the float64 product of the dequantized inputs",
                     fontsize=9)
        fig.tight_layout()
        path = save(fig, out_dir, f"fp8_errcurve_{run_name}.png")
        written.append(path)
    return written
