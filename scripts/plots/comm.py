"""Expert-parallel traffic from `moelab ep` (comm/ datasets [steps, ranks]).

Figures:
  comm_inter_node_bytes.png  inter-node dispatch bytes per token against the
                             node limit M, one line per (EP, dispatch mode)
  comm_rank_load.png         expert load per rank (mean over steps) of every
                             run, normalised by the mean: the imbalance an EP
                             step waits on
"""
import os

import matplotlib.pyplot as plt
import numpy as np

from plots._common import runs, save


def _attr(group, key, default=None):
    v = group.attrs.get(key, default)
    if isinstance(v, bytes):
        v = v.decode()
    return v


def _ep_runs(f):
    return [(n, g) for n, g in runs(f) if "comm" in g and "inter_node_bytes_per_token" in g["comm"]]


def applies(f):
    return bool(_ep_runs(f))


def plot(f, out_dir):
    written = []
    eps = _ep_runs(f)

    # Inter-node bytes per token vs M, one line per (EP, mode).
    lines = {}
    for name, g in eps:
        ep = int(_attr(g, "ep", _attr(g, "parallel.ep", 0)))
        mode = _attr(g, "parallel.dispatch", "direct")
        m = int(_attr(g, "max_nodes_effective", _attr(g, "parallel.max_nodes", 0)))
        m_set = int(_attr(g, "parallel.max_nodes", m) or m)
        per_token = float(np.mean(g["comm"]["inter_node_bytes_per_token"][()]))
        lines.setdefault((ep, mode), []).append((m_set if m_set > 0 else m, per_token, m))
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for (ep, mode), pts in sorted(lines.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if mode == "direct" else "s",
                linestyle="-" if mode == "direct" else "--", label=f"EP {ep} {mode}")
    ax.set_xlabel("node limit M (nodes per token at most)")
    ax.set_ylabel("inter-node dispatch bytes per token")
    ax.set_title("Inter-node traffic vs node limit and EP degree")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = save(fig, out_dir, "comm_inter_node_bytes.png", dpi=120)
    written.append(path)

    # Per-rank expert load, normalised by the mean over ranks; one line per
    # (EP, effective M) — the dispatch mode does not change the routing.
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    seen = set()
    for name, g in eps:
        ep = int(_attr(g, "ep", 0))
        m = int(_attr(g, "max_nodes_effective", 0))
        source = _attr(g, "routing.source", "")
        key = (ep, m, source)
        if key in seen:
            continue
        seen.add(key)
        load = np.asarray(g["comm"]["expert_load"][()], dtype=float).mean(axis=0)
        load = load[:ep] if ep > 0 else load  # first DP replica
        if load.mean() > 0 and len(load) > 1:
            ax.plot(np.arange(len(load)), load / load.mean(), marker=".", alpha=0.8,
                    label=f"EP {ep}, M {m} {source}")
    ax.axhline(1.0, color="k", linewidth=0.8)
    ax.set_xlabel("EP rank")
    ax.set_ylabel("expert load / mean")
    ax.set_title("Per-rank expert load (max/mean decides the EP step)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = save(fig, out_dir, "comm_rank_load.png", dpi=120)
    written.append(path)
    return written
