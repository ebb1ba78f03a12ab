"""Pipeline schedule Gantt charts (schedule/events of `moelab schedule` or of a
measured run), drawn like the DualPipe figures: one row per rank (rank 0 on
top), time to the right, one colour per op type (F, B, B_input, W, F&B),
micro-batch numbers in the cells (numbered within their direction), the
second chunk of a rank (DualPipe's second direction, DualPipeV's way up) in
a darker shade of the same colour; an F&B cell is split,
forward on top and backward below.

As a plot module: applies/plot (scripts/plot.py). As a script:
  schedule.py RESULTS.h5 [--run NAME] --png FILE.png
"""
import argparse
import os
import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from plots._common import runs  # noqa: E402

OPS = {0: "F", 1: "B", 2: "B_input", 3: "W", 4: "F&B"}
COLOURS = {"F": "#f2b880", "B": "#8fc7e8", "B_input": "#a6d99b", "W": "#c9b3e6", "F&B": "#ffffff"}


def _shade(colour, chunk):
    """Chunk 0 as is, later chunks darker: DualPipe's second direction (chunk =
    direction), DualPipeV's way up, interleaved 1F1B's virtual stages."""
    if chunk <= 0:
        return colour
    r, g, b = mcolors.to_rgb(colour)
    k = 0.72 ** min(chunk, 3)
    return (r * k, g * k, b * k)


def applies(f):
    return any("schedule" in run and "events" in run["schedule"] for _, run in runs(f))


def _attr(group, name, default=""):
    value = group.attrs.get(name, default)
    return value.decode() if isinstance(value, bytes) else value


def draw(run_group, png_path, title=None):
    g = run_group["schedule"]
    ev = g["events"]
    col = {name: ev[name][()] for name in ev}
    num_ranks = int(g.attrs["num_ranks"])
    num_mb = int(g.attrs["num_microbatches"])
    num_dirs = int(g.attrs.get("num_directions", 1))
    makespan = float(g.attrs["makespan_s"])
    per_dir = num_mb // num_dirs if num_dirs > 1 else num_mb

    def label(mb, direction):
        return str(mb - direction * per_dir if num_dirs > 1 else mb)

    n = len(col["rank"])
    durations = col["end_s"] - col["start_s"]
    # Scale so a typical op is about a third of an inch wide (the median:
    # measured timelines mix very short and long ops).
    typical = float(np.median(durations[durations > 0])) if (durations > 0).any() else 1.0
    width = min(40.0, max(8.0, 0.35 * makespan / typical))
    fig, ax = plt.subplots(figsize=(width, 0.55 * num_ranks + 1.6))
    text_size = 7 if width < 30 else 6
    inches_per_s = 0.85 * width / makespan if makespan > 0 else 0.0

    def show_text(x0, x1):
        return (x1 - x0) * inches_per_s >= 0.12
    for i in range(n):
        rank, op = int(col["rank"][i]), OPS[int(col["op"][i])]
        x0, x1 = float(col["start_s"][i]), float(col["end_s"][i])
        y = num_ranks - 1 - rank
        d, c = int(col["direction"][i]), int(col["chunk"][i])
        if op == "F&B":
            bd, bc = int(col["b_direction"][i]), int(col["b_chunk"][i])
            ax.add_patch(Rectangle((x0, y + 0.5), x1 - x0, 0.45, facecolor=_shade(COLOURS["F"], c),
                                   edgecolor="black", linewidth=0.4))
            ax.add_patch(Rectangle((x0, y + 0.05), x1 - x0, 0.45, facecolor=_shade(COLOURS["B"], bc),
                                   edgecolor="black", linewidth=0.4))
            if show_text(x0, x1):
                ax.text((x0 + x1) / 2, y + 0.72, label(int(col["microbatch"][i]), d), ha="center", va="center",
                        fontsize=text_size - 1)
                ax.text((x0 + x1) / 2, y + 0.27, label(int(col["b_microbatch"][i]), bd), ha="center", va="center",
                        fontsize=text_size - 1)
        else:
            ax.add_patch(Rectangle((x0, y + 0.05), x1 - x0, 0.9, facecolor=_shade(COLOURS[op], c),
                                   edgecolor="black", linewidth=0.4))
            if show_text(x0, x1):
                ax.text((x0 + x1) / 2, y + 0.5, label(int(col["microbatch"][i]), d), ha="center", va="center",
                        fontsize=text_size)
    ax.set_xlim(0, makespan)
    ax.set_ylim(0, num_ranks)
    ax.set_yticks([num_ranks - 1 - r + 0.5 for r in range(num_ranks)])
    ax.set_yticklabels([f"rank {r}" for r in range(num_ranks)])
    ax.set_xlabel("time (s)")
    kind = _attr(g, "kind")
    source = _attr(g, "source", "simulated")
    idle = g["ranks"]["idle_s"][()] if "ranks" in g else None
    subtitle = f"makespan {makespan:.4g}"
    if idle is not None and len(idle):
        subtitle += f", idle per rank {idle.min():.4g} .. {idle.max():.4g}"
    if "table2_bubble_s" in g.attrs:
        subtitle += f", Table 2 bubble {float(g.attrs['table2_bubble_s']):.4g}"
    ax.set_title(title or f"{kind} ({source}): {num_ranks} ranks, {int(g.attrs['num_stages'])} stages, "
                 f"{num_mb} micro-batches; {subtitle}", fontsize=10)
    used = sorted({OPS[int(o)] for o in col["op"]}, key=list(COLOURS).index)
    handles = [Patch(facecolor=COLOURS[o], edgecolor="black", label=o) for o in used if o != "F&B"]
    if "F&B" in used:
        handles.append(Patch(facecolor="white", edgecolor="black", label="F&B: split cell, F above B"))
    if (col["chunk"] > 0).any():
        which = {"dualpipe": "direction 1", "dualpipev": "the way up"}.get(kind, "chunk 1+")
        handles.append(Patch(facecolor=_shade("#cccccc", 1), edgecolor="black", label=f"darker: {which}"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.35 if num_ranks < 6 else -0.15),
              ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path


def plot(f, out_dir):
    written = []
    for name, run in runs(f):
        if "schedule" in run and "events" in run["schedule"]:
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
            written.append(draw(run, os.path.join(out_dir, f"schedule_{safe}.png")))
    return written


def main():
    import h5py

    parser = argparse.ArgumentParser(description="Gantt chart of one run's schedule/events")
    parser.add_argument("results")
    parser.add_argument("--run", help="run name (default: the first run with schedule/events)")
    parser.add_argument("--png", required=True)
    args = parser.parse_args()
    with h5py.File(args.results, "r") as f:
        candidates = [(n, r) for n, r in runs(f) if "schedule" in r and "events" in r["schedule"]]
        if args.run:
            candidates = [(n, r) for n, r in candidates if n == args.run]
        if not candidates:
            print(f"error: {args.results}: no run with schedule/events" +
                  (f" named {args.run}" if args.run else ""), file=sys.stderr)
            return 2
        draw(candidates[0][1], args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
