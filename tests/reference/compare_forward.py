#!/usr/bin/env python3
"""Compares a `moelab forward` output file with a case's expected.h5.

For every layer in EXPECTED (layers/{i}/...):
  output       relative Frobenius error ||got - exp||_F / ||exp||_F <= --tol (2e-5)
  topk_idx     the same set of experts for every token (order within a row is free)
  topk_weight  matched by expert index, relative Frobenius error <= --tol
Prints one line per layer; exit status 0 when all pass, 1 otherwise.

Usage: compare_forward.py OUT.h5 EXPECTED.h5 [--tol 2e-5]
"""
import argparse
import sys

import h5py
import numpy as np


def rel_fro(got, exp):
    num = np.linalg.norm((got.astype(np.float64) - exp.astype(np.float64)).ravel())
    den = np.linalg.norm(exp.astype(np.float64).ravel())
    return num / den if den > 0 else num


def compare(out_path, expected_path, tol):
    failures = []
    with h5py.File(out_path, "r") as got, h5py.File(expected_path, "r") as exp:
        layers = sorted(exp["layers"].keys(), key=int)
        for layer in layers:
            e = exp[f"layers/{layer}"]
            where = f"layer {layer}"
            if f"layers/{layer}/output" not in got:
                failures.append(f"{where}: {out_path} has no layers/{layer}/output")
                print(f"{where}: MISSING")
                continue
            g = got[f"layers/{layer}"]
            out, ref = g["output"][()], e["output"][()]
            if out.shape != ref.shape:
                failures.append(f"{where}: output shape {out.shape}, expected {ref.shape}")
                continue
            if out.dtype != np.float32:
                failures.append(f"{where}: output dtype {out.dtype}, expected float32")
            err = rel_fro(out, ref)
            line = f"{where}: output rel_fro_err {err:.3e} max_abs_err {np.max(np.abs(out - ref)):.3e}"
            if not np.all(np.isfinite(out)) or not err <= tol:
                failures.append(f"{where}: output relative Frobenius error {err:.3e} > {tol:g}")
            if "topk_idx" in e:
                if "topk_idx" not in g or "topk_weight" not in g:
                    failures.append(f"{where}: MoE layer without topk_idx / topk_weight in {out_path}")
                    print(line)
                    continue
                gi, gw = g["topk_idx"][()], g["topk_weight"][()]
                ei, ew = e["topk_idx"][()], e["topk_weight"][()]
                if gi.shape != ei.shape or gw.shape != ew.shape:
                    failures.append(f"{where}: topk shapes {gi.shape}/{gw.shape}, expected {ei.shape}/{ew.shape}")
                    print(line)
                    continue
                if gi.dtype != np.int32 or gw.dtype != np.float32:
                    failures.append(f"{where}: topk dtypes {gi.dtype}/{gw.dtype}, expected int32/float32")
                go, eo = np.argsort(gi, axis=1), np.argsort(ei, axis=1)
                gi_s, ei_s = np.take_along_axis(gi, go, 1), np.take_along_axis(ei, eo, 1)
                same = np.all(gi_s == ei_s, axis=1)
                line += f"; experts identical for {int(same.sum())}/{len(same)} tokens"
                if not same.all():
                    t = int(np.argmin(same))
                    failures.append(f"{where}: token {t} routed to {sorted(gi[t].tolist())}, expected "
                                    f"{sorted(ei[t].tolist())} ({int((~same).sum())} tokens differ)")
                else:
                    werr = rel_fro(np.take_along_axis(gw, go, 1), np.take_along_axis(ew, eo, 1))
                    line += f", topk_weight rel_fro_err {werr:.3e}"
                    if not werr <= tol:
                        failures.append(f"{where}: topk_weight relative Frobenius error {werr:.3e} > {tol:g}")
            print(line)
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("expected")
    ap.add_argument("--tol", type=float, default=2e-5)
    args = ap.parse_args()
    failures = compare(args.out, args.expected, args.tol)
    for f in failures:
        print("FAIL " + f)
    print("PASS" if not failures else f"FAILED ({len(failures)})")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
