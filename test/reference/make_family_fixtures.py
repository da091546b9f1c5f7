#!/usr/bin/env python3
"""Seeded tiny IBM Granite-4.0-H and NVIDIA Nemotron-H fixtures computed by HF transformers (CPU, float32).

Writes, for each fixture below, a directory in the layout of make_fixtures.py (test/reference/README.md):
  hf/config.json, hf/model.safetensors (save_pretrained: the published checkpoint names) and
  reference.json with HF's logits (plain PyTorch path, eager attention), greedy ids from full forward passes
  (HF's cached one-token Mamba path skips the dt clamp, docs/model.md §6.5) and `checks`: HF against this
  script's own float64 re-implementation of each family (docs/model.md §1.5, §1.6), and the routing margin.

Where HF and the original implementation disagree, the fixture follows the original (docs/model.md §1.5-§1.6):
  - granitemoehybrid: HF's GraniteMoeHybridRMSNormGated ignores mamba_n_groups; it is patched to the grouped
    form of mamba_ssm's RMSNormGated (as for Bamba, §6.2).
  - nemotron_h: HF's port clamps dt at (time_step_min, inf); NVIDIA's own kernel path passes the configured
    time_step_limit to mamba_ssm, so every mixer's time_step_limit is set back to the configured one.

Run with torch + transformers 5.18 (CPU is enough, a few seconds):
  python3 test/reference/make_family_fixtures.py --out test/fixtures
  python3 test/reference/make_family_fixtures.py --out /tmp/fx --only granite-dense
"""
import json
import os
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402

from make_fixtures import run_fixtures  # noqa: E402  (same directory: the CLI loop)
from make_hybrid_fixtures import (  # noqa: E402  (shared float64 blocks and helpers)
    BOS, CASE_SHAPES, EOS, GREEDY_PROMPT, INF, PAD, greedy, init_value, mamba2_mixer, max_abs, patch_gated_norm, rms,
    rope, rounded, sdpa)

GRANITE = [
    dict(name="granite-dense", seed=733, d_model=32, layers=["mamba", "attention", "mamba", "attention"], n_q=4, n_kv=2,
         shared=40, experts=0, top_k=0, expert_hidden=0, m_heads=4, m_head_dim=16, d_state=8, n_groups=2, chunk=8,
         vocab=64, tied=True, dt_limit=(0.0, INF), rope=None, eps=1e-6,
         scalars=dict(embedding_multiplier=4.0, residual_multiplier=0.5, attention_multiplier=0.3, logits_scaling=2.5),
         covers="Granite-4.0-H dense (h-350m/h-1b/h-micro shape): mamba/attention per-layer list, NoPE attention with "
                "GQA 4/2, softmax scale = attention_multiplier, embedding/residual multipliers, logits divided by "
                "logits_scaling, shared MLP after every mixer, G=2 (gated norm patched to grouped), tied"),
    dict(name="granite-moe", seed=808, d_model=32, layers=["attention", "mamba", "mamba", "attention", "mamba"], n_q=4,
         n_kv=1, shared=24, experts=4, top_k=2, expert_hidden=16, m_heads=4, m_head_dim=16, d_state=8, n_groups=2,
         chunk=8, vocab=64, tied=False, dt_limit=(0.0, 0.05), rope=5000.0, eps=1e-6,
         scalars=dict(embedding_multiplier=6.0, residual_multiplier=0.4, attention_multiplier=0.2, logits_scaling=3.0),
         covers="Granite-4.0-H MoE (h-tiny/h-small shape): 4 experts top-2 (router -> top-k -> softmax over the "
                "top-k, experts fused input_linear/output_linear) plus the shared MLP, position_embedding_type rope "
                "(theta 5000, full head dim), MQA, dt clamp (0, 0.05) that clips, G=2, untied, every muP scalar != 1"),
]


def set_weights(model, f, gen):
    """Every parameter moved off its init (make_hybrid_fixtures.init_value)."""
    seen = set()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            p.copy_(init_value(pname, p.shape, gen, f["dt_limit"]).to(p.dtype))


def save(model, out, f):
    """save_pretrained (HF 5.x writes the published checkpoint names); returns the tensors as saved, by those names."""
    from safetensors.torch import load_file
    model.save_pretrained(os.path.join(out, "hf"))
    path = os.path.join(out, "hf", "model.safetensors")
    os.chmod(path, 0o644)
    sd = load_file(path)
    if f.get("tied"):
        sd.pop("lm_head.weight", None)
    return sd


def routing_margin(scores_per_token, k):
    """Smallest gap between the k-th and (k+1)-th routing score over all tokens: no fp32 rounding can flip a choice."""
    top = scores_per_token.topk(k + 1, dim=-1).values
    return float((top[..., k - 1] - top[..., k]).min())


# ---- Granite-4.0-H (GraniteMoeHybridForCausalLM), float64 ----

def granite_moe(W, p, u, f, margins):
    """Router (linear) -> top-k logits -> softmax over them; experts input_linear [E,2F,D] = [gate | up], output_linear."""
    logits = u @ W[p + "router.layer.weight"].T
    margins.append(routing_margin(logits, f["top_k"]))
    top, idx = logits.topk(f["top_k"], dim=-1)
    w = top.softmax(-1)
    y = torch.zeros_like(u)
    for j in range(f["top_k"]):
        wi = W[p + "input_linear.weight"][idx[..., j]]  # (B,L,2F,D)
        gate, up = torch.einsum("bld,blfd->blf", u, wi).chunk(2, dim=-1)
        h = F.silu(gate) * up
        y = y + w[..., j, None] * torch.einsum("blf,bldf->bld", h, W[p + "output_linear.weight"][idx[..., j]])
    return y


def granite_reference(sd, f, ids, margins):
    W = {k: v.detach().to(torch.float64) for k, v in sd.items()}
    sc, eps = f["scalars"], f["eps"]
    s = dict(H=f["m_heads"], P=f["m_head_dim"], N=f["d_state"], G=f["n_groups"], dt_limit=f["dt_limit"], eps=eps)
    hd = f["d_model"] // f["n_q"]
    x = W["model.embed_tokens.weight"][ids] * sc["embedding_multiplier"]
    B, L = ids.shape
    for i, kind in enumerate(f["layers"]):
        p = f"model.layers.{i}."
        u = rms(x, W[p + "input_layernorm.weight"], eps)
        if kind == "attention":
            a = p + "self_attn."
            q = (u @ W[a + "q_proj.weight"].T).reshape(B, L, f["n_q"], hd)
            k = (u @ W[a + "k_proj.weight"].T).reshape(B, L, f["n_kv"], hd)
            v = (u @ W[a + "v_proj.weight"].T).reshape(B, L, f["n_kv"], hd)
            if f["rope"] is not None:
                q, k = rope(q, hd, f["rope"]), rope(k, hd, f["rope"])
            y = sdpa(q, k, v, sc["attention_multiplier"]) @ W[a + "o_proj.weight"].T
        else:
            y = mamba2_mixer(W, p + "mamba.", u, s)
        x = x + y * sc["residual_multiplier"]
        u = rms(x, W[p + "post_attention_layernorm.weight"], eps)
        gate, up = (u @ W[p + "shared_mlp.input_linear.weight"].T).chunk(2, dim=-1)
        h = (F.silu(gate) * up) @ W[p + "shared_mlp.output_linear.weight"].T
        if f["experts"] > 0:
            h = h + granite_moe(W, p + "block_sparse_moe.", u, f, margins)
        x = x + h * sc["residual_multiplier"]
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    return rms(x, W["model.norm.weight"], eps) @ head.T / sc["logits_scaling"]


def make_granite(f, out_root, log):
    from transformers import GraniteMoeHybridConfig, GraniteMoeHybridForCausalLM
    name = f["name"]
    out = os.path.join(out_root, name)
    os.makedirs(os.path.join(out, "hf"), exist_ok=True)
    torch.manual_seed(f["seed"])
    gen = torch.Generator().manual_seed(f["seed"])
    rope_kw = {} if f["rope"] is None else dict(position_embedding_type="rope",
                                                 rope_parameters={"rope_type": "default", "rope_theta": f["rope"]})
    cfg = GraniteMoeHybridConfig(
        vocab_size=f["vocab"], hidden_size=f["d_model"], num_hidden_layers=len(f["layers"]), layer_types=f["layers"],
        num_attention_heads=f["n_q"], num_key_value_heads=f["n_kv"], shared_intermediate_size=f["shared"],
        intermediate_size=f["expert_hidden"] or 8, num_local_experts=f["experts"], num_experts_per_tok=f["top_k"] or 1,
        mamba_n_heads=f["m_heads"], mamba_d_head=f["m_head_dim"], mamba_n_groups=f["n_groups"], mamba_d_state=f["d_state"],
        mamba_d_conv=4, mamba_expand=2, mamba_chunk_size=f["chunk"], mamba_conv_bias=True, mamba_proj_bias=False,
        time_step_limit=tuple(f["dt_limit"]), rms_norm_eps=f["eps"], tie_word_embeddings=f["tied"], pad_token_id=PAD,
        bos_token_id=BOS, eos_token_id=EOS, **f["scalars"], **rope_kw)
    cfg._attn_implementation = "eager"
    model = GraniteMoeHybridForCausalLM(cfg).eval()
    set_weights(model, f, gen)
    patched = patch_gated_norm(model, f["n_groups"])
    log(f"[{name}] layer types {cfg.layer_types}; gated norm: {patched}")
    sd = save(model, out, f)
    hf_logits = lambda ids: model(input_ids=ids, use_cache=False).logits.detach().float()  # noqa: E731
    write_reference(f, out, model, hf_logits, lambda ids, m: granite_reference(sd, f, ids, m), log,
                    GraniteMoeHybridForCausalLM, extra={
                        "gated_norm": "grouped (patched)",
                        "hf_native_gated_norm_grouped": patched["native_grouped"],
                        "scalars": f["scalars"],
                    })


NEMOTRON = [
    dict(name="nemotron-h", seed=909, d_model=32, pattern="M-*M-M*", n_q=4, n_kv=2, head_dim=12, mlp=40,
         m_heads=4, m_head_dim=12, d_state=8, n_groups=2, chunk=8, vocab=64, dt_limit=(0.015, 0.07), dt_min=0.001,
         as_pattern=True, eps=1e-5,
         covers="Nemotron-H dense (4B/8B/Nano-9B-v2 shape): hybrid_override_pattern string M-*M-M* (Mamba-2, MLP, "
                "attention blocks, each its own pre-norm residual block), Mamba width mamba_num_heads x mamba_head_dim "
                "= 48 != expand x hidden, G=2, GQA 4/2 with head_dim 12 != hidden/heads, no rotary, relu2 MLP, dt "
                "clamped to time_step_limit (0.015, 0.07) that clips on both sides (HF's port would clamp at "
                "time_step_min; patched back to the configured limit), untied"),
    dict(name="nemotron-h-moe", seed=1014, d_model=32, pattern="ME*ME*-", n_q=4, n_kv=1, head_dim=8, mlp=24,
         m_heads=4, m_head_dim=16, d_state=8, n_groups=2, chunk=8, vocab=64, dt_limit=(0.0, INF), dt_min=0.001,
         as_pattern=False, eps=1e-5,
         moe=dict(n_routed_experts=8, num_experts_per_tok=2, moe_intermediate_size=16, moe_shared_expert_intermediate_size=24,
                  moe_latent_size=20, n_group=4, topk_group=2, norm_topk_prob=True, routed_scaling_factor=2.5),
         covers="Nemotron-H MoE (Nemotron 3 Nano shape): layers_block_type list, 8 experts top-2 with sigmoid routing, "
                "e_score_correction_bias, grouped top-k (4 groups, best 2), norm_topk_prob, routed_scaling_factor 2.5, "
                "latent projection 32 -> 20 around the relu2 experts, a shared expert, MQA, G=2, untied"),
]


# ---- Nemotron-H (NemotronHForCausalLM), float64 ----

def nemotron_moe(W, m, u, f, margins):
    """Sigmoid router + e_score_correction_bias, grouped top-k, normalised, scaled; latent relu2 experts + shared."""
    c = f["moe"]
    E, k, G, TG = c["n_routed_experts"], c["num_experts_per_tok"], c["n_group"], c["topk_group"]
    s = torch.sigmoid(u @ W[m + "gate.weight"].T)
    choice = s + W[m + "gate.e_score_correction_bias"]
    group = choice.reshape(*choice.shape[:-1], G, E // G).topk(2, dim=-1).values.sum(-1)
    margins.append(routing_margin(group, TG))
    keep = torch.zeros_like(group).scatter(-1, group.topk(TG, dim=-1).indices, 1.0)
    keep = keep.repeat_interleave(E // G, dim=-1).bool()
    choice = choice.masked_fill(~keep, -INF)
    margins.append(routing_margin(choice, k))
    idx = choice.topk(k, dim=-1).indices
    w = s.gather(-1, idx)
    if c["norm_topk_prob"]:
        w = w / (w.sum(-1, keepdim=True) + 1e-20)
    w = w * c["routed_scaling_factor"]
    ul = u @ W[m + "fc1_latent_proj.weight"].T if c["moe_latent_size"] else u
    y = torch.zeros_like(ul)
    for e in range(E):
        h = F.relu(ul @ W[m + f"experts.{e}.up_proj.weight"].T) ** 2 @ W[m + f"experts.{e}.down_proj.weight"].T
        y = y + (w * (idx == e)).sum(-1, keepdim=True) * h
    if c["moe_latent_size"]:
        y = y @ W[m + "fc2_latent_proj.weight"].T
    return y + F.relu(u @ W[m + "shared_experts.up_proj.weight"].T) ** 2 @ W[m + "shared_experts.down_proj.weight"].T


def nemotron_reference(sd, f, ids, margins):
    W = {k: v.detach().to(torch.float64) for k, v in sd.items()}
    s = dict(H=f["m_heads"], P=f["m_head_dim"], N=f["d_state"], G=f["n_groups"], dt_limit=f["dt_limit"], eps=f["eps"])
    hd = f["head_dim"]
    x = W["backbone.embeddings.weight"][ids]
    B, L = ids.shape
    for i, ch in enumerate(f["pattern"]):
        p = f"backbone.layers.{i}."
        m = p + "mixer."
        u = rms(x, W[p + "norm.weight"], f["eps"])
        if ch == "M":
            y = mamba2_mixer(W, m, u, s)
        elif ch == "*":
            q = (u @ W[m + "q_proj.weight"].T).reshape(B, L, f["n_q"], hd)
            k = (u @ W[m + "k_proj.weight"].T).reshape(B, L, f["n_kv"], hd)
            v = (u @ W[m + "v_proj.weight"].T).reshape(B, L, f["n_kv"], hd)
            y = sdpa(q, k, v, hd ** -0.5) @ W[m + "o_proj.weight"].T
        elif ch == "-":
            y = F.relu(u @ W[m + "up_proj.weight"].T) ** 2 @ W[m + "down_proj.weight"].T
        else:
            y = nemotron_moe(W, m, u, f, margins)
        x = x + y
    return rms(x, W["backbone.norm_f.weight"], f["eps"]) @ W["lm_head.weight"].T


def patch_dt_limit(model, limit):
    """HF's port clamps dt at (time_step_min, inf); NVIDIA's kernel path uses time_step_limit (docs/model.md §1.6)."""
    mixers = [lyr.mixer for lyr in model.model.layers if lyr.block_type == "linear_attention"]
    for mx in mixers:
        mx.time_step_limit = tuple(limit)
    return len(mixers)


def make_nemotron(f, out_root, log):
    from transformers import NemotronHConfig, NemotronHForCausalLM
    name = f["name"]
    out = os.path.join(out_root, name)
    os.makedirs(os.path.join(out, "hf"), exist_ok=True)
    torch.manual_seed(f["seed"])
    gen = torch.Generator().manual_seed(f["seed"])
    cfg = NemotronHConfig(
        vocab_size=f["vocab"], hidden_size=f["d_model"], hybrid_override_pattern=f["pattern"],
        num_attention_heads=f["n_q"], num_key_value_heads=f["n_kv"], head_dim=f["head_dim"], intermediate_size=f["mlp"],
        mamba_num_heads=f["m_heads"], mamba_head_dim=f["m_head_dim"], ssm_state_size=f["d_state"], n_groups=f["n_groups"],
        conv_kernel=4, chunk_size=f["chunk"], use_conv_bias=True, use_bias=False, time_step_limit=tuple(f["dt_limit"]),
        time_step_min=f["dt_min"], layer_norm_epsilon=f["eps"], tie_word_embeddings=False, mlp_hidden_act="relu2",
        pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS, **f.get("moe", {}))
    cfg._attn_implementation = "eager"
    model = NemotronHForCausalLM(cfg).eval()
    set_weights(model, f, gen)
    with torch.no_grad():
        for lyr in model.model.layers:
            if lyr.block_type == "moe":
                b = lyr.mixer.gate.e_score_correction_bias
                b.copy_(0.3 * (2 * torch.rand(b.shape, generator=gen) - 1))
    patched = patch_dt_limit(model, f["dt_limit"])
    log(f"[{name}] layers {cfg.layers_block_type}; dt limit {f['dt_limit']} on {patched} mixers")
    sd = save(model, out, f)
    cfg_path = os.path.join(out, "hf", "config.json")
    with open(cfg_path) as fh:
        saved = json.load(fh)
    if f["as_pattern"]:  # the published configs' form
        saved.pop("layers_block_type", None)
        saved["hybrid_override_pattern"] = f["pattern"]
        saved["num_hidden_layers"] = len(f["pattern"])
        with open(cfg_path, "w") as fh:
            json.dump(saved, fh, indent=2)
    hf_logits = lambda ids: model(input_ids=ids, use_cache=False).logits.detach().float()  # noqa: E731
    write_reference(f, out, model, hf_logits, lambda ids, m: nemotron_reference(sd, f, ids, m), log, NemotronHForCausalLM,
                    extra={"dt_limit": f"time_step_limit {list(f['dt_limit'])} (patched: HF 5.18 clamps at "
                                       f"(time_step_min {f['dt_min']}, inf))",
                           "layer_plan": "hybrid_override_pattern" if f["as_pattern"] else "layers_block_type"},
                    reload_patch=lambda m: patch_dt_limit(m, f["dt_limit"]))


def write_reference(f, out, model, hf_logits, ref_logits, log, cls, extra, reload_patch=None):
    """Cases, greedy ids and checks (HF against the float64 re-implementation, a reload, the routing margin)."""
    name = f["name"]
    checks, cases, margins = {}, [], []
    data_gen = torch.Generator().manual_seed(f["seed"] + 1)
    for b, L in CASE_SHAPES:
        ids = torch.randint(0, f["vocab"], (b, L), generator=data_gen)
        with torch.no_grad():
            logits = hf_logits(ids)
        checks[f"logits_{b}x{L}_hf_vs_float64_reference"] = max_abs(logits, ref_logits(ids, margins))
        cases.append({"input_ids": ids.tolist(), "logits": rounded(logits)})
    if margins:
        checks["routing_margin_min"] = min(margins)
    prompt = torch.randint(0, f["vocab"], (1, GREEDY_PROMPT), generator=data_gen)
    with torch.no_grad():
        out_ids = greedy(hf_logits, prompt, f["vocab"])
    try:
        with torch.no_grad():
            m2 = cls.from_pretrained(os.path.join(out, "hf")).eval()
            m2.config._attn_implementation = "eager"
            (reload_patch or (lambda m: patch_gated_norm(m, f["n_groups"])))(m2)
            ids0 = torch.tensor(cases[0]["input_ids"])
            checks["hf_reload_logits_max_abs"] = max_abs(m2(input_ids=ids0).logits, hf_logits(ids0))
    except Exception:
        log(f"[{name}] reload check failed:\n{traceback.format_exc()}")
    worst = max(v for k, v in checks.items() if k.endswith("float64_reference"))
    if worst > 1e-5 or checks.get("routing_margin_min", 1.0) < 1e-4:
        raise RuntimeError(f"[{name}] checks failed: {checks}")
    ref = {
        "spec": name, "covers": f["covers"], "cases": cases,
        "greedy": {"input_ids": prompt.tolist(), "output_ids": out_ids.tolist(), "eos_token_id": EOS},
        **extra, "checks": checks,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    with open(os.path.join(out, "reference.json"), "w") as fh:
        json.dump(ref, fh, separators=(",", ":"))
    log(f"[{name}] checks: {json.dumps(checks)}")
    log(f"[{name}] greedy: {out_ids.tolist()}")


def main():
    run_fixtures(__doc__, [(f, make_granite) for f in GRANITE] + [(f, make_nemotron) for f in NEMOTRON])


if __name__ == "__main__":
    main()
