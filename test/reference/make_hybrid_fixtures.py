#!/usr/bin/env python3
"""Seeded tiny hybrid (Mamba-2 + attention) fixtures: HF Bamba and a mamba_ssm mamba2attn model.

Writes, for each fixture, a directory in the layout of ../shared/fixtures (see test/reference/README.md):
  bamba-*       hf/config.json, hf/model.safetensors (BambaForCausalLM.save_pretrained) and reference.json
                with HF transformers' logits (plain PyTorch path, float32, CPU; its gated norm patched to the
                grouped form when mamba_n_groups > 1, docs/model.md §6.2), greedy ids from full forward passes
                (HF's cached one-token path skips the dt clamp, docs/model.md §6.5).
  mamba2attn-*  mamba_ssm/config.json, mamba_ssm/pytorch_model.bin (original state-spaces names) and
                reference.json with the logits of this script's float64 re-implementation of
                MixerModel (Mamba2 + MHA + GatedMLP, docs/model.md §1.1-1.4): mamba_ssm itself needs CUDA kernels.
The float64 re-implementation is checked against HF on the Bamba fixtures (`checks` in reference.json).

Run on a machine with torch + transformers 5.x:
  python3 test/reference/make_hybrid_fixtures.py --out test/fixtures
"""
import json
import math
import os
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import transformers  # noqa: E402  (make_fixtures, imported below, needs it too)

INF = float("inf")
EOS, BOS, PAD = 2, 1, 0
CASE_SHAPES = [(1, 37), (2, 16), (1, 1), (1, 70)]
GREEDY_PROMPT, GREEDY_NEW = 12, 20

BAMBA = [
    dict(name="bamba-g1", seed=404, d_model=32, n_layer=4, attn=[1], n_q=4, n_kv=2, mlp=48, m_heads=4, m_head_dim=16,
         d_state=8, n_groups=1, chunk=8, vocab=80, tied=False, dt_limit=(0.0, INF), rope_theta=10000.0,
         covers="Bamba: one attention layer among Mamba-2 layers, GQA 4 q / 2 kv heads, partial rotary (half of "
                "head_dim 8), SwiGLU in every layer, untied lm_head, G=1"),
    dict(name="bamba-g2", seed=505, d_model=32, n_layer=3, attn=[0, 2], n_q=4, n_kv=1, mlp=48, m_heads=4, m_head_dim=16,
         d_state=8, n_groups=2, chunk=8, vocab=64, tied=True, dt_limit=(0.0, 0.05), rope_theta=5000.0,
         covers="Bamba: attention first and last (MQA, 1 kv head), G=2 (grouped gated norm, patched), dt clamp "
                "(0, 0.05) that clips, rope_theta 5000, tied embeddings"),
]

MAMBA2ATTN = [
    dict(name="mamba2attn-tiny", seed=606, d_model=32, n_layer=3, attn=[1], d_intermediate=40, raw_vocab=60,
         pad_multiple=16, d_state=8, head_dim=16, n_groups=1, chunk=8,
         attn_cfg={"causal": True, "num_heads": 4, "num_heads_kv": 2, "head_dim": 16, "rotary_emb_dim": 8,
                   "d_conv": 4, "qkv_proj_bias": True, "out_proj_bias": True},
         covers="mamba_ssm hybrid: MHA (GQA 4/2, head_dim 16 != d_model/heads, rotary on 8 of 16 dims, depthwise "
                "conv over qkv without activation, biases), GatedMLP (d_intermediate 40 -> 128) in every layer, "
                "vocab 60 padded to 64, tied"),
]


def rounded(t, nd=6):
    if isinstance(t, torch.Tensor):
        t = t.detach().double().tolist()
    if isinstance(t, list):
        return [rounded(v, nd) for v in t]
    r = round(float(t), nd)
    return 0.0 if r == 0 else r


def max_abs(a, b):
    return float((a.double() - b.double()).abs().max())


def init_value(name, shape, gen, dt_limit):
    """Weights moved off their initial values (as make_fixtures.py)."""
    if name.endswith("norm.weight") or name.endswith("layernorm.weight") or name.endswith("norm_f.weight") or name.endswith("norm2.weight"):
        return 1.0 + 0.2 * (2 * torch.rand(shape, generator=gen) - 1)
    if name.endswith(".D"):
        return 1.0 + 0.3 * (2 * torch.rand(shape, generator=gen) - 1)
    if name.endswith("A_log"):
        return torch.log(1.0 + 7.0 * torch.rand(shape, generator=gen))
    if name.endswith("dt_bias"):
        dt = 0.01 + 0.09 * torch.rand(shape, generator=gen)
        if dt_limit[1] < 0.1:  # a real clamp: half the heads below the limit, half above
            dt[0::2] = 0.01 + 0.01 * torch.rand(dt[0::2].shape, generator=gen)
            dt[1::2] = 0.06 + 0.04 * torch.rand(dt[1::2].shape, generator=gen)
        return dt + torch.log(-torch.expm1(-dt))  # softplus^-1
    return 0.15 * torch.randn(shape, generator=gen)


# ---- float64 re-implementation (docs/model.md §1.1-§1.4), independent of HF ----

def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def mamba2_mixer(W, m, u, s):
    """Sequential Mamba-2 mixer (docs/model.md §1.2, §2): u (B,L,D) with prefix m (e.g. 'model.layers.0.mamba.')."""
    H, P, N, G, K = s["H"], s["P"], s["N"], s["G"], 4
    DI = H * P
    Bsz, L, _ = u.shape
    zxbcdt = u @ W[m + "in_proj.weight"].T
    z, xbc, dt = torch.split(zxbcdt, [DI, DI + 2 * G * N, H], dim=-1)
    w = W[m + "conv1d.weight"][:, 0, :]
    xpad = F.pad(xbc, (0, 0, K - 1, 0))
    conv = F.silu(sum(w[:, k] * xpad[:, k:k + L, :] for k in range(K)) + W[m + "conv1d.bias"])
    xs, Bm, Cm = torch.split(conv, [DI, G * N, G * N], dim=-1)
    dt = F.softplus(dt + W[m + "dt_bias"]).clamp(*s["dt_limit"])
    A = -torch.exp(W[m + "A_log"])
    xs = xs.reshape(Bsz, L, H, P)
    Bh = Bm.reshape(Bsz, L, G, N).repeat_interleave(H // G, dim=2)
    Ch = Cm.reshape(Bsz, L, G, N).repeat_interleave(H // G, dim=2)
    h = torch.zeros(Bsz, H, P, N, dtype=torch.float64)
    ys = []
    for t in range(L):
        dtt = dt[:, t, :, None, None]
        h = h * torch.exp(dtt * A[None, :, None, None]) + dtt * xs[:, t, :, :, None] * Bh[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", h, Ch[:, t]) + W[m + "D"][None, :, None] * xs[:, t])
    y = torch.stack(ys, 1).reshape(Bsz, L, DI) * F.silu(z)
    yg = y.reshape(Bsz, L, G, DI // G)
    yg = yg * torch.rsqrt(yg.pow(2).mean(-1, keepdim=True) + s["eps"])
    return (yg.reshape(Bsz, L, DI) * W[m + "norm.weight"]) @ W[m + "out_proj.weight"].T


def rope(x, R, base):
    """GPT-NeoX rotate-half on the first R dims of x (B,L,H,hd), positions 0..L-1."""
    if R == 0:
        return x
    L = x.shape[1]
    inv = 1.0 / (base ** (torch.arange(0, R, 2, dtype=torch.float64) / R))
    ang = torch.arange(L, dtype=torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang, ang], -1).cos()[None, :, None, :]
    sin = torch.cat([ang, ang], -1).sin()[None, :, None, :]
    xr, xp = x[..., :R], x[..., R:]
    rot = torch.cat([-xr[..., R // 2:], xr[..., :R // 2]], -1)
    return torch.cat([xr * cos + rot * sin, xp], -1)


def sdpa(q, k, v, scale):
    """Causal GQA attention: q (B,L,Hq,hd), k/v (B,L,Hkv,hd); q head h reads kv head h // (Hq/Hkv)."""
    rep = q.shape[2] // k.shape[2]
    k = k.repeat_interleave(rep, dim=2)
    v = v.repeat_interleave(rep, dim=2)
    s = torch.einsum("bihd,bjhd->bhij", q, k) * scale
    L = q.shape[1]
    s = s.masked_fill(~torch.ones(L, L, dtype=torch.bool).tril(), -INF)
    return torch.einsum("bhij,bjhd->bihd", s.softmax(-1), v).reshape(q.shape[0], L, -1)


def bamba_attention(W, m, u, a):
    B, L, _ = u.shape
    q = (u @ W[m + "q_proj.weight"].T).reshape(B, L, a["n_q"], a["hd"])
    k = (u @ W[m + "k_proj.weight"].T).reshape(B, L, a["n_kv"], a["hd"])
    v = (u @ W[m + "v_proj.weight"].T).reshape(B, L, a["n_kv"], a["hd"])
    q, k = rope(q, a["R"], a["base"]), rope(k, a["R"], a["base"])
    return sdpa(q, k, v, a["hd"] ** -0.5) @ W[m + "o_proj.weight"].T


def mha_attention(W, m, u, c):
    """mamba_ssm MHA (docs/model.md §1.4): fused in_proj, conv over qkv without activation, kv as (two, hkv, d)."""
    B, L, _ = u.shape
    Hq, Hkv, hd, K = c["num_heads"], c["num_heads_kv"], c["head_dim"], c["d_conv"]
    qkv = u @ W[m + "in_proj.weight"].T + W[m + "in_proj.bias"]
    w = W[m + "conv1d.weight"][:, 0, :]
    xpad = F.pad(qkv, (0, 0, K - 1, 0))
    qkv = sum(w[:, k] * xpad[:, k:k + L, :] for k in range(K)) + W[m + "conv1d.bias"]
    q, kv = torch.split(qkv, [Hq * hd, 2 * Hkv * hd], dim=-1)
    q = q.reshape(B, L, Hq, hd)
    kv = kv.reshape(B, L, 2, Hkv, hd)
    k, v = kv[:, :, 0], kv[:, :, 1]
    R = c["rotary_emb_dim"]
    q, k = rope(q, R, 10000.0), rope(k, R, 10000.0)
    return sdpa(q, k, v, hd ** -0.5) @ W[m + "out_proj.weight"].T + W[m + "out_proj.bias"]


def bamba_reference(sd, f, ids):
    W = {k: v.detach().to(torch.float64) for k, v in sd.items()}
    s = dict(H=f["m_heads"], P=f["m_head_dim"], N=f["d_state"], G=f["n_groups"], dt_limit=f["dt_limit"], eps=1e-5)
    a = dict(n_q=f["n_q"], n_kv=f["n_kv"], hd=f["d_model"] // f["n_q"], base=f["rope_theta"], R=f["rotary_dim"])
    x = W["model.embed_tokens.weight"][ids]
    for i in range(f["n_layer"]):
        p = f"model.layers.{i}."
        u = rms(x, W[p + "input_layernorm.weight"], 1e-5)
        x = x + (bamba_attention(W, p + "self_attn.", u, a) if i in f["attn"] else mamba2_mixer(W, p + "mamba.", u, s))
        u = rms(x, W[p + "pre_ff_layernorm.weight"], 1e-5)
        fw = p + "feed_forward."
        x = x + (F.silu(u @ W[fw + "gate_proj.weight"].T) * (u @ W[fw + "up_proj.weight"].T)) @ W[fw + "down_proj.weight"].T
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    return rms(x, W["model.final_layernorm.weight"], 1e-5) @ head.T


def mamba2attn_reference(sd, f, ids):
    W = {k: v.detach().to(torch.float64) for k, v in sd.items()}
    s = dict(H=2 * f["d_model"] // f["head_dim"], P=f["head_dim"], N=f["d_state"], G=f["n_groups"], dt_limit=(0.0, INF), eps=1e-5)
    hidden = math.ceil(f["d_intermediate"] / 128) * 128
    x = W["backbone.embedding.weight"][ids]
    for i in range(f["n_layer"]):
        p = f"backbone.layers.{i}."
        u = rms(x, W[p + "norm.weight"], 1e-5)
        x = x + (mha_attention(W, p + "mixer.", u, f["attn_cfg"]) if i in f["attn"] else mamba2_mixer(W, p + "mixer.", u, s))
        u = rms(x, W[p + "norm2.weight"], 1e-5)
        value, gate = torch.split(u @ W[p + "mlp.fc1.weight"].T, [hidden, hidden], dim=-1)
        x = x + (value * F.silu(gate)) @ W[p + "mlp.fc2.weight"].T
    return rms(x, W["backbone.norm_f.weight"], 1e-5) @ W["backbone.embedding.weight"].T


def greedy(logits_of, prompt, real_vocab):
    ids = prompt.clone()
    for _ in range(GREEDY_NEW):
        logits = logits_of(ids)[0, -1].clone()
        logits[EOS] = -INF
        logits[real_vocab:] = -INF
        ids = torch.cat([ids, logits.argmax().view(1, 1)], dim=1)
    return ids


# ---- HF Bamba ----

from make_fixtures import grouped_gated_norm, run_fixtures  # noqa: E402  (same directory: the grouped form, model.md §6.2; the CLI)


def patch_gated_norm(model, n_groups):
    """HF 5.17's gated norm ignores mamba_n_groups (docs/model.md §6.2): replace its forward by the grouped form."""
    norms = [m for m in model.modules() if type(m).__name__.endswith("RMSNormGated")]
    if not norms:
        raise RuntimeError("no *RMSNormGated module found to patch")
    cls = type(norms[0])
    original = cls.__dict__.get("_fixture_original_forward", cls.forward)
    for n in norms:
        n.fixture_group_size = n.weight.shape[0] // n_groups
    g = torch.Generator().manual_seed(7)
    width = norms[0].weight.shape[0]
    y, z = torch.randn(2, 3, width, generator=g), torch.randn(2, 3, width, generator=g)
    with torch.no_grad():
        native_grouped = bool(torch.allclose(original(norms[0], y, z), grouped_gated_norm(norms[0], y, z), atol=1e-6))
        cls._fixture_original_forward = original
        cls.forward = grouped_gated_norm
        used = bool(torch.allclose(norms[0](y, z), grouped_gated_norm(norms[0], y, z)))
    if not used:
        raise RuntimeError(f"patching {cls.__name__}.forward had no effect")
    return {"class": cls.__name__, "modules": len(norms), "native_grouped": native_grouped}


def make_bamba(f, out_root, log):
    from transformers import BambaConfig, BambaForCausalLM
    name = f["name"]
    out = os.path.join(out_root, name)
    os.makedirs(os.path.join(out, "hf"), exist_ok=True)
    torch.manual_seed(f["seed"])
    gen = torch.Generator().manual_seed(f["seed"])
    kw = dict(vocab_size=f["vocab"], tie_word_embeddings=f["tied"], hidden_size=f["d_model"], intermediate_size=f["mlp"],
              num_hidden_layers=f["n_layer"], num_attention_heads=f["n_q"], num_key_value_heads=f["n_kv"],
              rms_norm_eps=1e-5, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS, attn_layer_indices=f["attn"],
              mamba_n_heads=f["m_heads"], mamba_d_head=f["m_head_dim"], mamba_n_groups=f["n_groups"],
              mamba_d_state=f["d_state"], mamba_d_conv=4, mamba_expand=2, mamba_chunk_size=f["chunk"],
              mamba_conv_bias=True, mamba_proj_bias=False, time_step_limit=tuple(f["dt_limit"]))
    try:
        cfg = BambaConfig(**kw, rope_parameters={"rope_type": "default", "rope_theta": f["rope_theta"], "partial_rotary_factor": 0.5})
    except Exception:
        log(f"[{name}] rope_parameters refused, using the default theta:\n{traceback.format_exc()}")
        cfg = BambaConfig(**kw)
    try:
        cfg._attn_implementation = "eager"
    except Exception:
        log(f"[{name}] could not select eager attention")
    model = BambaForCausalLM(cfg).eval()
    seen = set()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            p.copy_(init_value(pname, p.shape, gen, f["dt_limit"]).to(p.dtype))
    inv = model.model.rotary_emb.inv_freq.detach().double()
    rotary = {"rotary_dim": 2 * inv.numel(), "inv_freq": rounded(inv, 9), "rope_parameters": getattr(cfg, "rope_parameters", None)}
    f = dict(f, rotary_dim=rotary["rotary_dim"],
             rope_theta=float((1.0 / inv[1]) ** (rotary["rotary_dim"] / 2.0)) if inv.numel() > 1 else f["rope_theta"])
    log(f"[{name}] HF rotary: dim {rotary['rotary_dim']}, theta {f['rope_theta']:.1f}, rope_parameters {rotary['rope_parameters']}")
    patched = patch_gated_norm(model, f["n_groups"])
    log(f"[{name}] gated norm: {patched}")
    model.save_pretrained(os.path.join(out, "hf"))
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if f["tied"]:
        sd.pop("lm_head.weight", None)

    checks, cases = {}, []
    data_gen = torch.Generator().manual_seed(f["seed"] + 1)
    hf_logits = lambda ids: model(input_ids=ids, use_cache=False).logits.detach().float()  # noqa: E731
    for b, L in CASE_SHAPES:
        ids = torch.randint(0, f["vocab"], (b, L), generator=data_gen)
        with torch.no_grad():
            logits = hf_logits(ids)
        checks[f"logits_{b}x{L}_hf_vs_float64_reference"] = max_abs(logits, bamba_reference(sd, f, ids))
        cases.append({"input_ids": ids.tolist(), "logits": rounded(logits)})
    prompt = torch.randint(0, f["vocab"], (1, GREEDY_PROMPT), generator=data_gen)
    with torch.no_grad():
        out_ids = greedy(hf_logits, prompt, f["vocab"])
    try:
        with torch.no_grad():
            m2 = BambaForCausalLM.from_pretrained(os.path.join(out, "hf")).eval()
            patch_gated_norm(m2, f["n_groups"])
            ids0 = torch.tensor(cases[0]["input_ids"])
            checks["hf_reload_logits_max_abs"] = max_abs(m2(input_ids=ids0).logits, hf_logits(ids0))
    except Exception:
        log(f"[{name}] reload check failed:\n{traceback.format_exc()}")
    ref = {
        "spec": name, "covers": f["covers"], "cases": cases,
        "greedy": {"input_ids": prompt.tolist(), "output_ids": out_ids.tolist(), "eos_token_id": EOS},
        "rotary": rotary,
        "gated_norm": "grouped (patched)" if f["n_groups"] > 1 else "single group (grouped and full-width forms agree)",
        "hf_native_gated_norm_grouped": patched["native_grouped"],
        "checks": checks,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    with open(os.path.join(out, "reference.json"), "w") as fh:
        json.dump(ref, fh, separators=(",", ":"))
    log(f"[{name}] checks: {json.dumps(checks)}")
    log(f"[{name}] greedy: {out_ids.tolist()}")


# ---- mamba_ssm mamba2attn (own float64 reference) ----

def mamba2attn_state_dict(f, gen):
    D, H, P, N, G = f["d_model"], 2 * f["d_model"] // f["head_dim"], f["head_dim"], f["d_state"], f["n_groups"]
    DI = H * P
    c = f["attn_cfg"]
    Hq, Hkv, hd, K = c["num_heads"], c["num_heads_kv"], c["head_dim"], c["d_conv"]
    qkv = hd * (Hq + 2 * Hkv)
    hidden = math.ceil(f["d_intermediate"] / 128) * 128
    rows = math.ceil(f["raw_vocab"] / f["pad_multiple"]) * f["pad_multiple"]
    shapes = {"backbone.embedding.weight": (rows, D)}
    for i in range(f["n_layer"]):
        p = f"backbone.layers.{i}."
        shapes[p + "norm.weight"] = (D,)
        if i in f["attn"]:
            shapes.update({p + "mixer.in_proj.weight": (qkv, D), p + "mixer.in_proj.bias": (qkv,),
                           p + "mixer.conv1d.weight": (qkv, 1, K), p + "mixer.conv1d.bias": (qkv,),
                           p + "mixer.out_proj.weight": (D, Hq * hd), p + "mixer.out_proj.bias": (D,)})
        else:
            shapes.update({p + "mixer.in_proj.weight": (2 * DI + 2 * G * N + H, D), p + "mixer.conv1d.weight": (DI + 2 * G * N, 1, 4),
                           p + "mixer.conv1d.bias": (DI + 2 * G * N,), p + "mixer.dt_bias": (H,), p + "mixer.A_log": (H,),
                           p + "mixer.D": (H,), p + "mixer.norm.weight": (DI,), p + "mixer.out_proj.weight": (D, DI)})
        shapes.update({p + "norm2.weight": (D,), p + "mlp.fc1.weight": (2 * hidden, D), p + "mlp.fc2.weight": (D, hidden)})
    shapes["backbone.norm_f.weight"] = (D,)
    sd = {k: init_value(k, s, gen, (0.0, INF)).float() for k, s in shapes.items()}
    sd["backbone.embedding.weight"][f["raw_vocab"]:] *= 0.1  # padded rows never win an argmax
    return sd


def make_mamba2attn(f, out_root, log):
    name = f["name"]
    out = os.path.join(out_root, name)
    os.makedirs(os.path.join(out, "mamba_ssm"), exist_ok=True)
    gen = torch.Generator().manual_seed(f["seed"])
    sd = mamba2attn_state_dict(f, gen)
    saved = dict(sd)
    saved["lm_head.weight"] = saved["backbone.embedding.weight"]  # a tied state_dict holds both keys, one storage
    torch.save(saved, os.path.join(out, "mamba_ssm", "pytorch_model.bin"))
    config = {"d_model": f["d_model"], "d_intermediate": f["d_intermediate"], "n_layer": f["n_layer"],
              "vocab_size": f["raw_vocab"], "ssm_cfg": {"layer": "Mamba2", "d_state": f["d_state"], "headdim": f["head_dim"],
                                                        "ngroups": f["n_groups"], "chunk_size": f["chunk"]},
              "attn_layer_idx": f["attn"], "attn_cfg": f["attn_cfg"], "rms_norm": True, "residual_in_fp32": True,
              "fused_add_norm": True, "pad_vocab_size_multiple": f["pad_multiple"], "tie_embeddings": True}
    with open(os.path.join(out, "mamba_ssm", "config.json"), "w") as fh:
        json.dump(config, fh, indent=1)
    logits_of = lambda ids: mamba2attn_reference(sd, f, ids).float()  # noqa: E731
    cases = []
    data_gen = torch.Generator().manual_seed(f["seed"] + 1)
    for b, L in CASE_SHAPES:
        ids = torch.randint(0, f["raw_vocab"], (b, L), generator=data_gen)
        cases.append({"input_ids": ids.tolist(), "logits": rounded(logits_of(ids))})
    prompt = torch.randint(0, f["raw_vocab"], (1, GREEDY_PROMPT), generator=data_gen)
    out_ids = greedy(logits_of, prompt, f["raw_vocab"])
    ref = {
        "spec": name, "covers": f["covers"], "cases": cases,
        "greedy": {"input_ids": prompt.tolist(), "output_ids": out_ids.tolist(), "eos_token_id": EOS,
                   "real_vocab_size": f["raw_vocab"]},
        "source": "float64 re-implementation in make_hybrid_fixtures.py (mamba_ssm needs CUDA kernels); its shared "
                  "parts are checked against HF on the bamba fixtures",
        "versions": {"torch": torch.__version__},
    }
    with open(os.path.join(out, "reference.json"), "w") as fh:
        json.dump(ref, fh, separators=(",", ":"))
    log(f"[{name}] greedy: {out_ids.tolist()}")


def main():
    run_fixtures(__doc__, [(f, make_bamba) for f in BAMBA] + [(f, make_mamba2attn) for f in MAMBA2ATTN])


if __name__ == "__main__":
    main()
