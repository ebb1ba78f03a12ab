#!/usr/bin/env python3
"""Generates the decoder-layer test cases under tests/fixtures/layer_cases/<case>/.

Each case is a tiny DeepSeek-V3-shaped checkpoint holding layers 3 and 4 only
(first_k_dense_replace = 4: layer 3 is dense, layer 4 is MoE; the indices do
not start at 0), with
  config.json                    Hugging Face config (YaRN with mscale != mscale_all_dim)
  model.safetensors              or model-0000{1,2}-of-00002.safetensors + model.safetensors.index.json
  input.h5                       hidden [T, H] float32
  expected.h5                    layers/{i}/output [T, H] float64; MoE layers also
                                 topk_idx [T, k] int32 and topk_weight [T, k] float64
Cases (same random master weights, stored differently):
  f32   every tensor F32, one file
  bf16  BF16 (e_score_correction_bias F32), one file
  bf16_v2  DeepSeek-V2-style config (q_proj without q compression, softmax,
        group_limited_greedy routing, no bias, unnormalised weights x 16), BF16
  fp8   linear weights F8_E4M3 with F32 128x128 weight_scale_inv (intermediate_size
        136 gives 2 blocks with a partial edge block; every other weight is one
        partial block), norms and gate BF16, bias F32; two shards + index.json
The expected values come from deepseek_v3_ref.py in float64 applied to the
weights exactly as stored (read back from the files). Seeds are searched until
every routing decision has a margin >= 2e-4 so float32 rounding cannot flip it.

Usage: /usr/bin/python3 tests/reference/make_layer_cases.py [--out DIR] [--cases f32,bf16,fp8]
"""
import argparse
import json
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_v3_ref as ref  # noqa: E402

CONFIG = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "model_type": "deepseek_v3",
    "vocab_size": 64,
    "hidden_size": 32,
    "intermediate_size": 136,
    "moe_intermediate_size": 12,
    "num_hidden_layers": 5,
    "first_k_dense_replace": 4,
    "moe_layer_freq": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "q_lora_rank": 24,
    "kv_lora_rank": 16,
    "qk_nope_head_dim": 8,
    "qk_rope_head_dim": 8,
    "v_head_dim": 8,
    "n_routed_experts": 16,
    "n_shared_experts": 1,
    "num_experts_per_tok": 3,
    "n_group": 4,
    "topk_group": 2,
    "routed_scaling_factor": 2.5,
    "scoring_func": "sigmoid",
    "topk_method": "noaux_tc",
    "norm_topk_prob": True,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "max_position_embeddings": 163840,
    "rope_scaling": {"type": "yarn", "factor": 40.0, "original_max_position_embeddings": 4096,
                     "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 0.8},
    "num_nextn_predict_layers": 0,
    "tie_word_embeddings": False,
    "attention_bias": False,
    "torch_dtype": "float32",
}
# DeepSeek-V2-style variant: no q compression (q_proj), softmax affinities,
# group-limited greedy routing by each group's best unbiased score, no bias,
# weights not normalised, scaled by 16 (as the 236B config), mscale 0.707.
CONFIG_V2 = dict(CONFIG, model_type="deepseek_v2", architectures=["DeepseekV2ForCausalLM"], q_lora_rank=None,
                 scoring_func="softmax", topk_method="group_limited_greedy", norm_topk_prob=False,
                 routed_scaling_factor=16.0,
                 rope_scaling=dict(CONFIG["rope_scaling"], mscale=0.707, mscale_all_dim=0.707))
CASE_CONFIGS = {"f32": CONFIG, "bf16": CONFIG, "fp8": CONFIG, "bf16_v2": CONFIG_V2}
LAYERS = [3, 4]
TOKENS = 12
MIN_MARGIN = 2e-4


def layer_specs(cfg, layer):
    """[(name, shape, kind)] with kind in linear (FP8 in the release), norm, gate, bias."""
    p = f"model.layers.{layer}."
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    dn, dr, dv = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    dc, dq = cfg["kv_lora_rank"], cfg["q_lora_rank"]
    s = [(p + "input_layernorm.weight", (H,), "norm")]
    a = p + "self_attn."
    if dq:
        s += [(a + "q_a_proj.weight", (dq, H), "linear"), (a + "q_a_layernorm.weight", (dq,), "norm"),
              (a + "q_b_proj.weight", (nh * (dn + dr), dq), "linear")]
    else:
        s += [(a + "q_proj.weight", (nh * (dn + dr), H), "linear")]
    s += [(a + "kv_a_proj_with_mqa.weight", (dc + dr, H), "linear"), (a + "kv_a_layernorm.weight", (dc,), "norm"),
          (a + "kv_b_proj.weight", (nh * (dn + dv), dc), "linear"), (a + "o_proj.weight", (H, nh * dv), "linear"),
          (p + "post_attention_layernorm.weight", (H,), "norm")]

    def mlp(prefix, inter):
        return [(prefix + "gate_proj.weight", (inter, H), "linear"), (prefix + "up_proj.weight", (inter, H), "linear"),
                (prefix + "down_proj.weight", (H, inter), "linear")]

    if not ref.is_moe_layer(cfg, layer):
        return s + mlp(p + "mlp.", cfg["intermediate_size"])
    E, I = cfg["n_routed_experts"], cfg["moe_intermediate_size"]
    s += [(p + "mlp.gate.weight", (E, H), "gate")]
    if cfg["topk_method"] == "noaux_tc":
        s += [(p + "mlp.gate.e_score_correction_bias", (E,), "bias")]
    for e in range(E):
        s += mlp(f"{p}mlp.experts.{e}.", I)
    if cfg["n_shared_experts"]:
        s += mlp(p + "mlp.shared_experts.", cfg["n_shared_experts"] * I)
    return s


def master_weights(cfg, rng):
    """float32 master weights: linears ~ N(0, 1/fan_in), norms ~ 1 + N(0, 0.1^2), gate wider, bias ~ N(0, 0.05^2)."""
    W = {}
    for layer in LAYERS:
        for name, shape, kind in layer_specs(cfg, layer):
            if kind == "linear":
                v = rng.standard_normal(shape) / np.sqrt(shape[1])
            elif kind == "norm":
                v = 1.0 + 0.1 * rng.standard_normal(shape)
            elif kind == "gate":
                v = 2.0 * rng.standard_normal(shape) / np.sqrt(shape[1])
            else:
                v = 0.05 * rng.standard_normal(shape)
            W[name] = (v.astype(np.float32), kind)
    return W


def stored_tensors(W, names, case):
    """[(name, dtype, shape, raw bytes)] as the case stores them."""
    out = []
    for name in names:
        v, kind = W[name]
        if case.startswith("f32") or kind == "bias":
            out.append((name, "F32", v.shape, v.astype("<f4").tobytes()))
        elif case.startswith("bf16") or kind in ("norm", "gate"):
            out.append((name, "BF16", v.shape, ref.bf16_bits(v).astype("<u2").tobytes()))
        else:  # fp8 linear
            codes, scales = ref.fp8_block_quantize(v)
            out.append((name, "F8_E4M3", v.shape, codes.tobytes()))
            out.append((name + "_scale_inv", "F32", scales.shape, scales.astype("<f4").tobytes()))
    return out


def write_case(root, case, cfg, W, hidden):
    d = os.path.join(root, case)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    meta = {"format": "pt", "generator": "tests/reference/make_layer_cases.py"}
    files = []
    if case.startswith("fp8"):  # one shard per layer, as the real release splits over files
        weight_map = {}
        total = 0
        for i, layer in enumerate(LAYERS):
            fname = f"model-{i + 1:05d}-of-{len(LAYERS):05d}.safetensors"
            tensors = stored_tensors(W, [n for n, _, _ in layer_specs(cfg, layer)], case)
            ref.write_safetensors(os.path.join(d, fname), tensors, meta)
            files.append(os.path.join(d, fname))
            for name, _, _, raw in tensors:
                weight_map[name] = fname
                total += len(raw)
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
            f.write("\n")
    else:
        names = [n for layer in LAYERS for n, _, _ in layer_specs(cfg, layer)]
        ref.write_safetensors(os.path.join(d, "model.safetensors"), stored_tensors(W, names, case), meta)
        files.append(os.path.join(d, "model.safetensors"))

    # The reference runs on the weights as stored, read back from the files.
    Wst = ref.load_weights(files)
    x = hidden.astype(np.float64)
    outputs, min_margin = {}, np.inf
    for layer in LAYERS:
        x, routing = ref.decoder_layer(x, Wst, cfg, layer)
        outputs[layer] = (x.copy(), routing)
        if routing is not None:
            min_margin = min(min_margin, routing[2])
    with h5py.File(os.path.join(d, "input.h5"), "w") as f:
        f.create_dataset("hidden", data=hidden.astype(np.float32))
    with h5py.File(os.path.join(d, "expected.h5"), "w") as f:
        f.attrs["case"] = case
        f.attrs["generator"] = "tests/reference/make_layer_cases.py (deepseek_v3_ref.py, float64)"
        f.attrs["min_routing_margin"] = min_margin
        for layer, (out, routing) in outputs.items():
            g = f.create_group(f"layers/{layer}")
            g.create_dataset("output", data=out)
            if routing is not None:
                g.create_dataset("topk_idx", data=routing[0].astype(np.int32))
                g.create_dataset("topk_weight", data=routing[1])
    return min_margin


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(here, "..", "fixtures", "layer_cases"))
    ap.add_argument("--cases", default=",".join(CASE_CONFIGS))
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    cases = args.cases.split(",")
    for seed in range(args.seed, args.seed + 100):
        margins = {}
        for case in cases:
            # Every case draws its master weights and input from the seed (the
            # same draw for f32/bf16/fp8; the V2 variant has its own shapes).
            rng = np.random.default_rng(seed)
            cfg = CASE_CONFIGS[case]
            W = master_weights(cfg, rng)
            hidden = rng.standard_normal((TOKENS, cfg["hidden_size"])).astype(np.float32)
            margins[case] = write_case(args.out, case, cfg, W, hidden)
        if min(margins.values()) >= MIN_MARGIN:
            break
        print(f"seed {seed}: routing margin {min(margins.values()):.2e} too small, next seed")
    else:
        sys.exit(f"no seed gave routing margins >= {MIN_MARGIN}")
    total = 0
    for case in cases:
        d = os.path.join(args.out, case)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        total += size
        print(f"{case}: seed {seed}, min routing margin {margins[case]:.3e}, {size} bytes in {d}")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
