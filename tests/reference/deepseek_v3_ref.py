"""An independent NumPy reference of one DeepSeek-V3 decoder layer, in float64.

Written from the DeepSeek-V3 technical report (arXiv 2412.19437) and the
Hugging Face configuration conventions, not from moelab's C++:
  MLA            §2.1.1 Eq. 1-11 (low-rank q and kv, decoupled RoPE key shared
                 by all heads, RMSNorm after each latent), HF weight names
  RoPE / YaRN    §4.3; frequencies, ramp and mscale as in HF
                 DeepseekV3YarnRotaryEmbedding (rotation of adjacent pairs)
  router         §2.1.2 Eq. 12-16: sigmoid affinities, bias only for selection,
                 group-limited top-k (group score = sum of its top-2 biased
                 scores, other groups masked to -inf), weights = unbiased
                 scores normalised over the chosen, times routed_scaling_factor
  MoE            shared experts + weighted routed experts (SwiGLU), no dropping
  block          x + MLA(RMSNorm(x)), then h + FFN(RMSNorm(h)); FFN is a dense
                 SwiGLU MLP for layers below first_k_dense_replace

Also: safetensors read/write and BF16 / FP8 E4M3 encodings in plain NumPy
(no torch, no safetensors package), so the generator and this reference share
nothing with the code under test.
"""
import json
import math
import struct

import numpy as np

# ---------------------------------------------------------------- encodings


def bf16_bits(x):
    """float32 array -> uint16 BF16 bits, round to nearest even."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def e4m3_table():
    """The 256 E4M3 code values (bias 7, no infinities, S.1111.111 = NaN)."""
    t = np.zeros(256, dtype=np.float64)
    for c in range(256):
        s, e, m = c >> 7, (c >> 3) & 15, c & 7
        if e == 15 and m == 7:
            v = math.nan
        elif e == 0:
            v = m * 2.0 ** -9
        else:
            v = (1 + m / 8) * 2.0 ** (e - 7)
        t[c] = -v if s else v
    return t


E4M3 = e4m3_table()


def e4m3_encode(x):
    """float array -> E4M3 codes, nearest value (ties to the even code), saturating at 448."""
    x = np.asarray(x, dtype=np.float64)
    pos = E4M3[:127]  # codes 0x00..0x7E, increasing, 0 .. 448
    a = np.minimum(np.abs(x), 448.0)
    hi = np.clip(np.searchsorted(pos, a), 1, 126)
    lo = hi - 1
    d_lo, d_hi = a - pos[lo], pos[hi] - a
    pick = np.where(d_lo < d_hi, lo, np.where(d_hi < d_lo, hi, np.where(lo % 2 == 0, lo, hi)))
    pick = np.where(a >= pos[hi], hi, pick)
    return (pick | np.where(np.signbit(x) & (pick != 0), 0x80, 0)).astype(np.uint8)


def fp8_block_quantize(w, block=128):
    """2-D float32 weight -> (codes uint8, scale_inv float32 [ceil(R/b), ceil(C/b)]).

    scale_inv = amax / 448 per block (partial blocks at the edges); code = e4m3(w / scale_inv).
    """
    w = np.asarray(w, dtype=np.float32)
    R, C = w.shape
    sr, sc = -(-R // block), -(-C // block)
    scales = np.zeros((sr, sc), dtype=np.float32)
    codes = np.zeros((R, C), dtype=np.uint8)
    for i in range(sr):
        for j in range(sc):
            blk = w[i * block:(i + 1) * block, j * block:(j + 1) * block]
            amax = np.float32(np.max(np.abs(blk)))
            s = np.float32(amax / np.float32(448.0)) if amax > 0 else np.float32(1.0)
            scales[i, j] = s
            codes[i * block:(i + 1) * block, j * block:(j + 1) * block] = e4m3_encode(blk.astype(np.float64) / float(s))
    return codes, scales


def fp8_block_dequantize(codes, scales, block=128):
    """codes * scale_inv of the block, the product rounded once to float32."""
    R, C = codes.shape
    s = np.repeat(np.repeat(scales.astype(np.float32), block, axis=0), block, axis=1)[:R, :C]
    return E4M3[codes].astype(np.float32) * s


# ---------------------------------------------------------------- safetensors

DTYPE_SIZE = {"F32": 4, "BF16": 2, "F8_E4M3": 1, "I32": 4, "F64": 8}


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes) in file order."""
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        n = DTYPE_SIZE[dtype] * int(np.prod(shape, dtype=np.int64))
        assert len(raw) == n, (name, len(raw), n)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, raw in tensors:
            f.write(raw)


def read_safetensors(path):
    """-> {name: (dtype, shape, raw bytes)}"""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        out[name] = (e["dtype"], tuple(e["shape"]), data[8 + n + b:8 + n + end])
    return out


def load_weights(paths, block=128):
    """Every tensor of the given files as float64, FP8 weights dequantised (float32 product)."""
    raw = {}
    for p in paths:
        raw.update(read_safetensors(p))
    out = {}
    for name, (dtype, shape, data) in raw.items():
        if name.endswith("_scale_inv"):
            continue
        if dtype == "F32":
            v = np.frombuffer(data, dtype="<f4").reshape(shape)
        elif dtype == "BF16":
            v = bf16_to_f32(np.frombuffer(data, dtype="<u2")).reshape(shape)
        elif dtype == "F8_E4M3":
            sdtype, sshape, sdata = raw[name + "_scale_inv"]
            assert sdtype == "F32"
            scales = np.frombuffer(sdata, dtype="<f4").reshape(sshape)
            v = fp8_block_dequantize(np.frombuffer(data, dtype=np.uint8).reshape(shape), scales, block)
        else:
            raise ValueError(f"{name}: dtype {dtype}")
        out[name] = v.astype(np.float64)
    return out


# ---------------------------------------------------------------- layer math (float64)


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def silu(x):
    return x / (1.0 + np.exp(-x))


def swiglu_mlp(x, W, prefix):
    g = x @ W[prefix + "gate_proj.weight"].T
    u = x @ W[prefix + "up_proj.weight"].T
    return (silu(g) * u) @ W[prefix + "down_proj.weight"].T


def yarn_get_mscale(scale, mscale):
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def rope_tables(cfg, T):
    """cos, sin [T, rope_dim/2] (already multiplied by YaRN's mscale ratio) and the softmax scale."""
    d = cfg["qk_rope_head_dim"]
    base = cfg["rope_theta"]
    exponents = np.arange(0, d, 2, dtype=np.float64) / d
    inv_freq = 1.0 / base ** exponents
    softmax_scale = (cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"]) ** -0.5
    cs_scale = 1.0
    rs = cfg.get("rope_scaling") or {}
    if rs.get("type", rs.get("rope_type")) == "yarn":
        factor = rs["factor"]
        orig = rs["original_max_position_embeddings"]
        beta_fast, beta_slow = rs.get("beta_fast", 32), rs.get("beta_slow", 1)
        mscale, mscale_all_dim = rs.get("mscale", 1.0), rs.get("mscale_all_dim", 0.0)

        def corr_dim(n_rot):  # dimension whose wavelength makes n_rot turns over orig
            return d * math.log(orig / (n_rot * 2 * math.pi)) / (2 * math.log(base))

        low = max(math.floor(corr_dim(beta_fast)), 0)
        high = min(math.ceil(corr_dim(beta_slow)), d - 1)
        if low == high:
            high += 0.001
        ramp = np.clip((np.arange(d // 2, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
        extrapolate = 1.0 - ramp  # 1: keep the original frequency; 0: interpolate (divide by factor)
        inv_freq = inv_freq / factor * (1.0 - extrapolate) + inv_freq * extrapolate
        cs_scale = yarn_get_mscale(factor, mscale) / yarn_get_mscale(factor, mscale_all_dim)
        if mscale_all_dim:
            m = yarn_get_mscale(factor, mscale_all_dim)
            softmax_scale *= m * m
    angles = np.outer(np.arange(T, dtype=np.float64), inv_freq)
    return np.cos(angles) * cs_scale, np.sin(angles) * cs_scale, softmax_scale


def rope(x, cos, sin):
    """Rotate adjacent pairs (x[2i], x[2i+1]) by angle t * inv_freq[i]. x [..., T, d] with cos/sin [T, d/2]."""
    xe, xo = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = xe * cos - xo * sin
    out[..., 1::2] = xo * cos + xe * sin
    return out


def mla(x, W, p, cfg):
    """Multi-head latent attention, training form (full K and V), causal, positions 0..T-1."""
    T = x.shape[0]
    nh = cfg["num_attention_heads"]
    dn, dr, dv = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    dc = cfg["kv_lora_rank"]
    eps = cfg["rms_norm_eps"]
    if cfg.get("q_lora_rank"):
        cq = rmsnorm(x @ W[p + "q_a_proj.weight"].T, W[p + "q_a_layernorm.weight"], eps)
        q = cq @ W[p + "q_b_proj.weight"].T
    else:
        q = x @ W[p + "q_proj.weight"].T
    q = q.reshape(T, nh, dn + dr).transpose(1, 0, 2)  # [nh, T, dn+dr]
    q_nope, q_pe = q[..., :dn], q[..., dn:]
    kv_a = x @ W[p + "kv_a_proj_with_mqa.weight"].T  # [T, dc + dr]
    c_kv, k_pe = kv_a[:, :dc], kv_a[:, dc:]
    kv = rmsnorm(c_kv, W[p + "kv_a_layernorm.weight"], eps) @ W[p + "kv_b_proj.weight"].T
    kv = kv.reshape(T, nh, dn + dv).transpose(1, 0, 2)  # [nh, T, dn+dv]
    k_nope, v = kv[..., :dn], kv[..., dn:]
    cos, sin, scale = rope_tables(cfg, T)
    q_pe = rope(q_pe, cos, sin)
    k_pe = rope(k_pe, cos, sin)  # [T, dr], shared by every head
    scores = (np.einsum("htd,hsd->hts", q_nope, k_nope) + np.einsum("htd,sd->hts", q_pe, k_pe)) * scale
    scores = np.where(np.tril(np.ones((T, T), dtype=bool)), scores, -np.inf)
    scores -= scores.max(axis=-1, keepdims=True)
    prob = np.exp(scores)
    prob /= prob.sum(axis=-1, keepdims=True)
    o = np.einsum("hts,hsd->htd", prob, v).transpose(1, 0, 2).reshape(T, nh * dv)
    return o @ W[p + "o_proj.weight"].T


def route(x, W, p, cfg):
    """-> topk_idx [T, k] (by decreasing biased score), topk_weight [T, k], margins (selection robustness)."""
    E, k = cfg["n_routed_experts"], cfg["num_experts_per_tok"]
    G, kg = cfg.get("n_group", 1), cfg.get("topk_group", 1)
    logits = x @ W[p + "gate.weight"].T
    if cfg.get("scoring_func", "sigmoid") == "sigmoid":
        scores = 1.0 / (1.0 + np.exp(-logits))
    else:
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        scores = e / e.sum(axis=-1, keepdims=True)
    method = cfg.get("topk_method", "noaux_tc")
    bias_name = p + "gate.e_score_correction_bias"
    biased = scores + W[bias_name] if method == "noaux_tc" else scores.copy()
    T = x.shape[0]
    idx = np.zeros((T, k), dtype=np.int32)
    weight = np.zeros((T, k))
    margin = math.inf
    for t in range(T):
        s = biased[t].copy()
        if G > 1 and method in ("noaux_tc", "group_limited_greedy"):
            grp = s.reshape(G, E // G)
            if method == "noaux_tc":
                gscore = np.sort(grp, axis=1)[:, -2:].sum(axis=1)
            else:
                gscore = grp.max(axis=1)
            order = np.argsort(-gscore, kind="stable")
            if kg < G:
                margin = min(margin, gscore[order[kg - 1]] - gscore[order[kg]])
            keep = np.zeros(G, dtype=bool)
            keep[order[:kg]] = True
            s = np.where(np.repeat(keep, E // G), s, -np.inf)
        order = np.argsort(-s, kind="stable")
        margin = min(margin, s[order[k - 1]] - s[order[k]]) if np.isfinite(s[order[k]]) else margin
        idx[t] = order[:k]
        w = scores[t, order[:k]]
        if cfg.get("norm_topk_prob", True) and k > 1:
            w = w / w.sum()
        weight[t] = w * cfg.get("routed_scaling_factor", 1.0)
    return idx, weight, margin


def moe(x, W, p, cfg):
    idx, weight, margin = route(x, W, p, cfg)
    y = np.zeros_like(x)
    if cfg.get("n_shared_experts", 0):
        y += swiglu_mlp(x, W, p + "shared_experts.")
    for t in range(x.shape[0]):
        for j in range(idx.shape[1]):
            y[t] += weight[t, j] * swiglu_mlp(x[t:t + 1], W, f"{p}experts.{idx[t, j]}.")[0]
    return y, idx, weight, margin


def is_moe_layer(cfg, layer):
    return (cfg.get("n_routed_experts") or 0) > 0 and layer >= cfg.get("first_k_dense_replace", 0) \
        and layer % cfg.get("moe_layer_freq", 1) == 0


def decoder_layer(x, W, cfg, layer):
    """-> output [T, H] and, for MoE layers, (topk_idx, topk_weight, margin)."""
    p = f"model.layers.{layer}."
    eps = cfg["rms_norm_eps"]
    h = x + mla(rmsnorm(x, W[p + "input_layernorm.weight"], eps), W, p + "self_attn.", cfg)
    u = rmsnorm(h, W[p + "post_attention_layernorm.weight"], eps)
    if is_moe_layer(cfg, layer):
        y, idx, weight, margin = moe(u, W, p + "mlp.", cfg)
        return h + y, (idx, weight, margin)
    return h + swiglu_mlp(u, W, p + "mlp."), None
