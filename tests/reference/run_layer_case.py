#!/usr/bin/env python3
"""Runs `moelab forward` on one layer case and compares it with the reference.

  run_layer_case.py CASE --workdir DIR -- build/moelab forward [extra flags]

CASE is a name under tests/fixtures/layer_cases/ (f32, bf16, fp8) or a path to
a case directory. The command after `--` gets --model CASE/config.json,
--weights (model.safetensors.index.json if present, else model.safetensors),
--input CASE/input.h5 and --out DIR/CASE.h5 appended; then compare_forward.py
checks the output (relative Frobenius error <= 2e-5, identical experts).
"""
import argparse
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import compare_forward  # noqa: E402


def main():
    argv = sys.argv[1:]
    if "--" not in argv:
        sys.exit("usage: run_layer_case.py CASE --workdir DIR -- MOELAB forward [flags]")
    split = argv.index("--")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--tol", type=float, default=2e-5)
    args = ap.parse_args(argv[:split])
    command = argv[split + 1:]
    case_dir = args.case if os.path.isdir(args.case) else os.path.join(here, "..", "fixtures", "layer_cases", args.case)
    case_dir = os.path.abspath(case_dir)
    name = os.path.basename(case_dir)
    index = os.path.join(case_dir, "model.safetensors.index.json")
    weights = index if os.path.exists(index) else os.path.join(case_dir, "model.safetensors")
    os.makedirs(args.workdir, exist_ok=True)
    out = os.path.join(os.path.abspath(args.workdir), name + ".h5")
    if os.path.exists(out):
        os.remove(out)
    cmd = command + ["--model", os.path.join(case_dir, "config.json"), "--weights", weights,
                     "--input", os.path.join(case_dir, "input.h5"), "--out", out]
    print("+ " + " ".join(cmd), flush=True)
    rc = subprocess.run(cmd).returncode
    if rc != 0:
        print(f"FAIL: the command exited with status {rc}")
        return 1
    failures = compare_forward.compare(out, os.path.join(case_dir, "expected.h5"), args.tol)
    for f in failures:
        print("FAIL " + f)
    print(f"{name}: " + ("PASS" if not failures else f"FAILED ({len(failures)})"))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
