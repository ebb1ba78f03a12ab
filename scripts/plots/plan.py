"""Capacity plans (moelab plan): for a sweep, GPU-hours for the token budget
against GPUs, one line per schedule (best feasible layout at each GPU count;
infeasible layouts omitted); for a single plan, the step's breakdown
(compute, exposed EP comm, PP bubble, DP sync) and memory per GPU as bars,
and the step timeline from schedule/events (one row per pipeline rank)."""
import os

import matplotlib.pyplot as plt
import numpy as np

from plots._common import runs, save


def _text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def applies(f):
    return any("plan" in run for _, run in runs(f))


def _sweep(name, g, out_dir):
    names = dict(item.split("=", 1) for item in _text(g.attrs["schedule_names"]).split(","))
    gpus, sched = g["gpus"][()], g["schedule"][()]
    feasible, hours = g["feasible"][()], g["gpu_hours"][()]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in sorted(set(sched.tolist())):
        xs, ys = [], []
        for n in sorted(set(gpus.tolist())):
            sel = (sched == s) & (gpus == n) & (feasible == 1)
            if sel.any():
                xs.append(n)
                ys.append(np.nanmin(hours[sel]) / 1e6)
        if xs:
            ax.plot(xs, ys, marker="o", label=names.get(str(s), str(s)))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("GPUs")
    ax.set_ylabel("GPU-hours for the budget (millions)")
    ax.set_title(f"{name}: best feasible layout per GPU count")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = save(fig, out_dir, f"{name}_plan_sweep.png", dpi=120)
    return [path]


def _single(name, run, out_dir):
    g = run["plan"]
    parts = ["compute_s", "exposed_comm_s", "bubble_s", "dp_sync_s", "optimizer_s"]
    mem = g["memory"].attrs
    mparts = ["weights_gb", "grads_gb", "optimizer_gb", "activations_gb", "comm_buffers_gb"]
    has_events = "schedule" in run and "events" in run["schedule"]
    fig, axes = plt.subplots(1, 3 if has_events else 2, figsize=(16 if has_events else 10, 4.5),
                             gridspec_kw={"width_ratios": [1, 1, 3] if has_events else [1, 1]})
    left = 0.0
    for p in parts:
        v = float(g.attrs[p])
        axes[0].barh([0], [v], left=left, label=p[:-2])
        left += v
    axes[0].set_yticks([])
    axes[0].set_xlabel("seconds per step")
    axes[0].set_title(f"step {float(g.attrs['step_time_s']):.2f} s, "
                      f"{float(g.attrs['tokens_per_s_per_gpu']):.0f} tok/s/GPU")
    axes[0].legend(fontsize=8)
    left = 0.0
    for p in mparts:
        v = float(mem[p])
        axes[1].barh([0], [v], left=left, label=p[:-3])
        left += v
    axes[1].axvline(float(mem["capacity_gb"]), color="k", ls="--", label="HBM")
    axes[1].set_yticks([])
    axes[1].set_xlabel("GB per GPU (fullest rank)")
    axes[1].set_title("fits" if int(mem["fits"]) else "DOES NOT FIT")
    axes[1].legend(fontsize=8)
    if has_events:
        ev = run["schedule"]["events"]
        rank, op = ev["rank"][()], ev["op"][()]
        start, end = ev["start_s"][()], ev["end_s"][()]
        colors = {0: "tab:blue", 1: "tab:orange", 2: "tab:orange", 3: "tab:green", 4: "tab:purple"}
        for k in sorted(set(op.tolist())):
            sel = op == k
            axes[2].barh(rank[sel], end[sel] - start[sel], left=start[sel], color=colors.get(k, "gray"),
                         label={0: "F", 1: "B", 2: "B_input", 3: "W", 4: "F&B"}.get(k, str(k)))
        axes[2].invert_yaxis()
        axes[2].set_xlabel("seconds")
        axes[2].set_ylabel("pipeline rank")
        axes[2].set_title("step timeline (schedule/events)")
        axes[2].legend(fontsize=8, ncol=5)
    fig.tight_layout()
    path = save(fig, out_dir, f"{name}_plan.png", dpi=120)
    return [path]


def plot(f, out_dir):
    written = []
    for name, run in runs(f):
        if "plan" not in run:
            continue
        g = run["plan"]
        written += _sweep(name, g, out_dir) if "gpu_hours" in g else _single(name, run, out_dir)
    return written
