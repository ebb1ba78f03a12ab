#!/usr/bin/env python3
"""Self-checks of the NumPy reference (deepseek_v3_ref.py) against closed forms
and published anchors, so the reference is not just trusted:
  - softmax scale of the real DeepSeek-V3 config: 192^-0.5 (0.1 ln 40 + 1)^2 = 0.1352338
  - YaRN ramp for rope dim 64: frequencies 0..10 kept, 23..31 divided by 40 (low 10, high 23)
  - RoPE is the complex rotation of adjacent pairs; q.k depends only on the position offset
  - routing: the bias changes the choice but not the weights; groups outside the
    top topk_group are never chosen; weights normalised and scaled
  - MLA training form equals the absorbed form (W_UK folded into q, W_UV after attention)
  - E4M3 encode/decode: round trip of all finite codes, ties to even, saturation
  - the committed cases' expected.h5 recomputed from their files (regeneration is deterministic)
Run: /usr/bin/python3 tests/reference/test_reference.py   (ctest: reference_selftest)
"""
import math
import os
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import deepseek_v3_ref as ref  # noqa: E402

V3 = {"qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "rope_theta": 10000.0,
      "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                       "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}}


def test_softmax_scale_and_ramp():
    cos, sin, scale = ref.rope_tables(V3, 2)
    assert abs(scale - 192 ** -0.5 * (0.1 * math.log(40) + 1) ** 2) < 1e-15
    assert abs(scale - 0.1352338) < 1e-7, scale
    inv = np.arctan2(sin[1], cos[1])  # angle at position 1 = inv_freq (all < pi)
    base = 1.0 / 10000.0 ** (np.arange(0, 64, 2) / 64)
    assert np.allclose(inv[:11], base[:11], rtol=1e-12), "dims up to low=10 keep their frequency"
    assert np.allclose(inv[23:], base[23:] / 40, rtol=1e-12), "dims from high=23 on are interpolated"
    assert np.all(inv[11:23] < base[11:23]) and np.all(inv[11:23] > base[11:23] / 40)
    assert np.allclose(cos ** 2 + sin ** 2, 1.0), "mscale ratio is 1 when mscale == mscale_all_dim"


def test_rope_is_pair_rotation():
    rng = np.random.default_rng(0)
    cfg = dict(V3, qk_rope_head_dim=8, rope_scaling=None)
    cos, sin, _ = ref.rope_tables(cfg, 6)
    x = rng.standard_normal((6, 8))
    z = (x[:, 0::2] + 1j * x[:, 1::2]) * np.exp(1j * np.arctan2(sin, cos))
    y = ref.rope(x, cos, sin)
    assert np.allclose(y[:, 0::2], z.real) and np.allclose(y[:, 1::2], z.imag)
    q, k = rng.standard_normal(8), rng.standard_normal(8)
    qs, ks = ref.rope(np.tile(q, (6, 1)), cos, sin), ref.rope(np.tile(k, (6, 1)), cos, sin)
    assert abs(qs[3] @ ks[1] - qs[5] @ ks[3]) < 1e-12, "relative position only"


def test_routing_rules():
    cfg = {"n_routed_experts": 8, "num_experts_per_tok": 2, "n_group": 4, "topk_group": 2,
           "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "topk_method": "noaux_tc", "norm_topk_prob": True}
    logits = np.array([[2.0, 1.9, -3, -3, 0.5, 0.4, 0.3, 0.2]])
    W = {"p.gate.weight": np.eye(8), "p.gate.e_score_correction_bias": np.zeros(8)}
    idx, w, _ = ref.route(logits, W, "p.", cfg)
    s = 1 / (1 + np.exp(-logits[0]))
    assert sorted(idx[0]) == [0, 1]
    assert np.allclose(w[0], 2.5 * s[[0, 1]] / s[[0, 1]].sum())
    # A bias on expert 6 moves the choice there (group 3 enters the top 2 groups),
    # but the weight of expert 6 is its unbiased score.
    W["p.gate.e_score_correction_bias"] = np.array([0, 0, 0, 0, 0, 0, 2.0, 0])
    idx, w, _ = ref.route(logits, W, "p.", cfg)
    assert sorted(idx[0]) == [0, 6], idx
    chosen = sorted(idx[0])
    assert np.allclose(sorted(w[0] / 2.5 * s[chosen].sum()), sorted(s[chosen]))
    # Expert 1 has the second-highest score but its group (0) loses to groups 3 and 2
    # once group 0's top-2 sum is pushed down: groups outside the top 2 are masked.
    W["p.gate.e_score_correction_bias"] = np.array([-1.5, -1.5, 0, 0, 0, 0, 0, 0])
    idx, _, _ = ref.route(logits, W, "p.", cfg)
    assert set(idx[0]) <= {4, 5, 6, 7}, idx


def test_mla_absorbed_form_matches():
    rng = np.random.default_rng(1)
    cfg = {"num_attention_heads": 2, "qk_nope_head_dim": 4, "qk_rope_head_dim": 4, "v_head_dim": 3,
           "kv_lora_rank": 5, "q_lora_rank": None, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
           "rope_scaling": {"type": "yarn", "factor": 4, "original_max_position_embeddings": 8,
                            "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 0.7}}
    H, T, nh = 6, 5, 2
    W = {"q_proj.weight": rng.standard_normal((nh * 8, H)), "kv_a_proj_with_mqa.weight": rng.standard_normal((9, H)),
         "kv_a_layernorm.weight": 1 + 0.1 * rng.standard_normal(5), "kv_b_proj.weight": rng.standard_normal((nh * 7, 5)),
         "o_proj.weight": rng.standard_normal((H, nh * 3))}
    x = rng.standard_normal((T, H))
    y = ref.mla(x, W, "", cfg)
    # Absorbed: scores from the compressed latent, W_UK applied to q, W_UV after attention.
    q = (x @ W["q_proj.weight"].T).reshape(T, nh, 8)
    kv_a = x @ W["kv_a_proj_with_mqa.weight"].T
    c = ref.rmsnorm(kv_a[:, :5], W["kv_a_layernorm.weight"], 1e-6)
    cos, sin, scale = ref.rope_tables(cfg, T)
    k_pe = ref.rope(kv_a[:, 5:], cos, sin)
    wkv = W["kv_b_proj.weight"].reshape(nh, 7, 5)
    out = np.zeros((T, nh, 3))
    for h in range(nh):
        q_lat = q[:, h, :4] @ wkv[h, :4]  # [T, 5]
        q_pe = ref.rope(q[:, h, 4:], cos, sin)
        sc = (q_lat @ c.T + q_pe @ k_pe.T) * scale
        sc = np.where(np.tril(np.ones((T, T), bool)), sc, -np.inf)
        p = np.exp(sc - sc.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        out[:, h] = (p @ c) @ wkv[h, 4:].T
    assert np.allclose(y, out.reshape(T, nh * 3) @ W["o_proj.weight"].T, rtol=1e-12, atol=1e-12)


def test_e4m3():
    finite = [c for c in range(256) if not math.isnan(ref.E4M3[c])]
    codes = ref.e4m3_encode(ref.E4M3[finite])
    assert np.array_equal(ref.E4M3[codes], ref.E4M3[finite])
    assert ref.e4m3_encode(np.array([1.0625]))[0] == 0x38, "tie between 1 and 1.125 goes to the even code"
    assert ref.e4m3_encode(np.array([1.1875]))[0] == 0x3A, "tie between 1.125 and 1.25 goes to the even code"
    assert ref.e4m3_encode(np.array([1e6]))[0] == 0x7E and ref.e4m3_encode(np.array([-1e6]))[0] == 0xFE
    assert ref.E4M3[0x01] == 2.0 ** -9 and ref.E4M3[0x7E] == 448


def test_committed_cases_reproduce():
    import h5py
    import make_layer_cases as mk
    root = os.path.join(here, "..", "fixtures", "layer_cases")
    for case in sorted(os.listdir(root)):
        d = os.path.join(root, case)
        files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".safetensors"))
        import json
        cfg = json.load(open(os.path.join(d, "config.json")))
        W = ref.load_weights(files)
        with h5py.File(os.path.join(d, "input.h5"), "r") as f:
            x = f["hidden"][()].astype(np.float64)
        with h5py.File(os.path.join(d, "expected.h5"), "r") as f:
            for layer in sorted(f["layers"].keys(), key=int):
                x, routing = ref.decoder_layer(x, W, cfg, int(layer))
                assert np.array_equal(x, f[f"layers/{layer}/output"][()]), (case, layer)
                if routing is not None:
                    assert np.array_equal(routing[0], f[f"layers/{layer}/topk_idx"][()]), (case, layer)
    assert mk.LAYERS == [3, 4]


if __name__ == "__main__":
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_")]
    for t in tests:
        t()
        print(f"ok {t.__name__}")
    print(f"{len(tests)} reference self-tests passed")
