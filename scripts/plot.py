#!/usr/bin/python3
"""Draw the PNG plots of a moelab results file.

usage: scripts/plot.py RESULTS.h5 [--out DIR] [--only MODULE]

Each module in scripts/plots/ knows one kind of result (training curves,
expert load, pipeline schedules, FP8 error curves, ...): it has
`applies(h5file) -> bool` and `plot(h5file, out_dir) -> list of PNG paths`.
Every module that applies to the file draws its figures into DIR (default:
next to the results file, in RESULTS_plots/).
"""
import argparse
import importlib
import os
import pkgutil
import sys

import h5py
import matplotlib

matplotlib.use("Agg")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import plots  # noqa: E402  (the package next to this script)


def modules():
    for info in sorted(pkgutil.iter_modules(plots.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield info.name, importlib.import_module("plots." + info.name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", help="a moelab results file (.h5)")
    parser.add_argument("--out", help="directory for the PNG files")
    parser.add_argument("--only", help="run only this plot module (" +
                        ", ".join(name for name, _ in modules()) + ")")
    args = parser.parse_args()
    if not os.path.exists(args.results):
        print(f"error: {args.results}: no such file", file=sys.stderr)
        return 2
    out_dir = args.out or os.path.splitext(args.results)[0] + "_plots"
    os.makedirs(out_dir, exist_ok=True)
    try:
        f = h5py.File(args.results, "r")
    except OSError as e:
        print(f"error: {args.results}: not a readable HDF5 file ({e})", file=sys.stderr)
        return 2
    written = []
    with f:
        for name, module in modules():
            if args.only and name != args.only:
                continue
            if module.applies(f):
                written += module.plot(f, out_dir)
    if not written:
        print(f"{args.results}: nothing to plot (no plot module applies)")
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
