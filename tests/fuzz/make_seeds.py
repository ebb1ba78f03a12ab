#!/usr/bin/env python3
"""Seed inputs for the safetensors header fuzzer (tests/fuzz/corpus/safetensors_header).

Small valid files of each dtype (with metadata, FP8 weights with block scales,
scalars, empty tensors) and a few near-misses; libFuzzer mutates from these.
Run once; scripts/fuzz.sh adds what the fuzzer finds.
"""
import json
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "safetensors_header")
os.makedirs(out, exist_ok=True)
SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4,
         "F32": 4, "F64": 8, "I64": 8, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}


def st_file(tensors, metadata=None, pad=True):
    header, data, offset = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape in tensors:
        n = SIZES[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        data += bytes((i * 37 + 11) & 0xFF for i in range(n))
        offset += n
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


seeds = {
    "f32": st_file([("model.layers.0.w", "F32", [2, 3])], {"format": "pt"}),
    "all_dtypes": st_file([("t_" + d, d, [3]) for d in SIZES]),
    "fp8_scales": st_file([("model.layers.3.mlp.up_proj.weight", "F8_E4M3", [4, 5]),
                           ("model.layers.3.mlp.up_proj.weight_scale_inv", "F32", [1, 1])]),
    "bf16_scalar_empty": st_file([("s", "BF16", []), ("e", "F32", [0, 7]), ("b", "BF16", [2, 2])]),
    "unpadded": st_file([("x", "F16", [5])], pad=False),
    "empty_header": st_file([]),
    "truncated": st_file([("x", "F32", [8])])[:-3],
    "bad_json": struct.pack("<Q", 6) + b'{"a": ',
    "bad_dtype": st_file([("x", "F32", [1])]).replace(b'"F32"', b'"F99"'),
}
for name, data in seeds.items():
    with open(os.path.join(out, "seed_" + name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
