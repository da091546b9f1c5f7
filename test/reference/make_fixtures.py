#!/usr/bin/env python3
"""Seeded tiny Mamba-2 fixtures computed by HF transformers (plain PyTorch path, float32, CPU).

Writes, for each fixture in FIXTURES, a directory with
  hf/config.json, hf/model.safetensors           (Mamba2ForCausalLM.save_pretrained)
  mamba_ssm/config.json, mamba_ssm/pytorch_model.bin   (torch.save, original state-spaces names)
  reference.json                                 (cases, greedy, final_states, checks)
in the layout of ../shared/fixtures (see test/reference/README.md).

Run on a machine with torch + transformers 5.x:
  python3 test/reference/make_fixtures.py --out test/fixtures
"""
import argparse
import json
import math
import os
import sys
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from transformers import Mamba2Config, Mamba2ForCausalLM  # noqa: E402

INF = float("inf")
EOS, BOS, PAD = 2, 0, 1
CASE_SHAPES = [(1, 37), (2, 16), (1, 1), (1, 70)]
GREEDY_PROMPT, GREEDY_NEW = 12, 20

# raw_vocab: the mamba_ssm vocab_size; rows = raw_vocab rounded up to pad_multiple (= HF vocab_size)
FIXTURES = [
    dict(name="tiny-g1", seed=101, d_model=32, n_layer=2, n_heads=4, head_dim=16, d_state=8, n_groups=1,
         chunk=8, raw_vocab=64, pad_multiple=1, tied=False, dt_limit=(0.0, INF), conv_kernel=4,
         covers="G=1, untied lm_head, 2 layers"),
    dict(name="small-g2", seed=202, d_model=64, n_layer=4, n_heads=8, head_dim=16, d_state=16, n_groups=2,
         chunk=16, raw_vocab=128, pad_multiple=1, tied=True, dt_limit=(0.0, INF), conv_kernel=4,
         covers="G=2 (grouped gated norm, group->head broadcast), tied, 4 layers; mamba_ssm lm_head shares "
                "the embedding's storage"),
    dict(name="clamp-pad", seed=303, d_model=32, n_layer=2, n_heads=4, head_dim=16, d_state=8, n_groups=2,
         chunk=8, raw_vocab=90, pad_multiple=16, tied=True, dt_limit=(0.0, 0.03), conv_kernel=4,
         covers="dt clamp to time_step_limit (0, 0.03) that really clips, G=2, tied, mamba_ssm vocab 90 "
                "padded to 96 rows (pad_vocab_size_multiple 16)"),
]


def padded_vocab(raw, multiple):
    return raw if raw % multiple == 0 else raw + multiple - raw % multiple


def hf_config(f):
    return Mamba2Config(
        vocab_size=padded_vocab(f["raw_vocab"], f["pad_multiple"]),
        hidden_size=f["d_model"], num_hidden_layers=f["n_layer"], num_heads=f["n_heads"],
        head_dim=f["head_dim"], state_size=f["d_state"], n_groups=f["n_groups"], chunk_size=f["chunk"],
        conv_kernel=f["conv_kernel"], expand=2, use_bias=False, use_conv_bias=True,
        residual_in_fp32=True, rms_norm=True, layer_norm_epsilon=1e-5,
        time_step_limit=tuple(f["dt_limit"]), tie_word_embeddings=f["tied"],
        bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, initializer_range=0.1,
    )


def mamba_ssm_config(f):
    ssm_cfg = {"layer": "Mamba2", "d_state": f["d_state"], "d_conv": f["conv_kernel"], "expand": 2,
               "headdim": f["head_dim"], "ngroups": f["n_groups"], "chunk_size": f["chunk"]}
    if f["dt_limit"] != (0.0, INF):
        ssm_cfg["dt_limit"] = list(f["dt_limit"])
    return {"d_model": f["d_model"], "d_intermediate": 0, "n_layer": f["n_layer"], "vocab_size": f["raw_vocab"],
            "ssm_cfg": ssm_cfg, "attn_layer_idx": [], "attn_cfg": {}, "rms_norm": True,
            "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": f["pad_multiple"],
            "tie_embeddings": f["tied"]}


# ---- grouped gated RMSNorm (original mamba_ssm semantics, docs/model.md §1.2 step 8, §6.2) ----

def grouped_gated_norm(module, hidden_states, gate=None):
    dtype = hidden_states.dtype
    h = hidden_states.to(torch.float32)
    if gate is not None:
        h = h * F.silu(gate.to(torch.float32))
    *lead, width = h.shape
    gs = module.fixture_group_size
    hg = h.view(*lead, width // gs, gs)
    hg = hg * torch.rsqrt(hg.pow(2).mean(-1, keepdim=True) + module.variance_epsilon)
    return module.weight * hg.view(*lead, width).to(dtype)


def patch_gated_norm(model, n_groups):
    """Replace HF's gated-norm forward by the grouped form; report whether HF's own was grouped."""
    norm0 = model.backbone.layers[0].mixer.norm
    cls = type(norm0)
    original = cls.__dict__.get("_fixture_original_forward", cls.forward)
    width = norm0.weight.shape[0]
    for layer in model.backbone.layers:
        layer.mixer.norm.fixture_group_size = width // n_groups
    g = torch.Generator().manual_seed(7)
    y, z = torch.randn(2, 3, width, generator=g), torch.randn(2, 3, width, generator=g)
    with torch.no_grad():
        native = original(norm0, y, z)
        grouped = grouped_gated_norm(norm0, y, z)
    native_grouped = bool(torch.allclose(native, grouped, atol=1e-6))
    cls._fixture_original_forward = original
    cls.forward = grouped_gated_norm
    return cls.__name__, native_grouped


# ---- weights moved off their initial values ----

def randomize(model, f, gen):
    seen = set()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            shape = p.shape
            if name.endswith("norm.weight") or name.endswith("norm_f.weight"):
                v = 1.0 + 0.2 * (2 * torch.rand(shape, generator=gen) - 1)
            elif name.endswith("mixer.D"):
                v = 1.0 + 0.3 * (2 * torch.rand(shape, generator=gen) - 1)
            elif name.endswith("A_log"):
                v = torch.log(1.0 + 7.0 * torch.rand(shape, generator=gen))
            elif name.endswith("dt_bias"):
                dt = 0.01 + 0.09 * torch.rand(shape, generator=gen)
                if f["dt_limit"][1] < 0.1:  # a real clamp: half the heads far below the limit, half above
                    dt[0::2] = 0.01 + 0.01 * torch.rand(dt[0::2].shape, generator=gen)
                    dt[1::2] = 0.05 + 0.05 * torch.rand(dt[1::2].shape, generator=gen)
                v = dt + torch.log(-torch.expm1(-dt))  # softplus^-1
            else:
                v = 0.15 * torch.randn(shape, generator=gen)
            p.copy_(v.to(p.dtype))
        raw, rows = f["raw_vocab"], model.backbone.embeddings.weight.shape[0]
        if rows > raw:  # padded rows: small, so that they never win an argmax
            model.backbone.embeddings.weight[raw:] *= 0.1
            if not f["tied"]:
                model.lm_head.weight[raw:] *= 0.1


# ---- float64 sequential re-implementation, an independent check of HF's numbers and cache ----

def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def sequential_reference(sd, f, ids):
    W = {k: v.detach().to(torch.float64) for k, v in sd.items()}
    D, H, P, N, G, K = f["d_model"], f["n_heads"], f["head_dim"], f["d_state"], f["n_groups"], f["conv_kernel"]
    DI = 2 * D
    cdim = DI + 2 * G * N
    lo, hi = f["dt_limit"]
    eps = 1e-5
    Bsz, L = ids.shape
    x = W["backbone.embeddings.weight"][ids]
    states = []
    for i in range(f["n_layer"]):
        p = f"backbone.layers.{i}."
        u = rms(x, W[p + "norm.weight"], eps)
        zxbcdt = u @ W[p + "mixer.in_proj.weight"].T
        z, xbc, dt = torch.split(zxbcdt, [DI, cdim, H], dim=-1)
        w = W[p + "mixer.conv1d.weight"][:, 0, :]  # [Cdim,K]
        xpad = F.pad(xbc, (0, 0, K - 1, 0))
        conv = sum(w[:, k] * xpad[:, k:k + L, :] for k in range(K)) + W[p + "mixer.conv1d.bias"]
        conv = F.silu(conv)
        xs, Bm, Cm = torch.split(conv, [DI, G * N, G * N], dim=-1)
        dt = F.softplus(dt + W[p + "mixer.dt_bias"]).clamp(lo, hi)
        A = -torch.exp(W[p + "mixer.A_log"])
        xs = xs.reshape(Bsz, L, H, P)
        Bh = Bm.reshape(Bsz, L, G, N).repeat_interleave(H // G, dim=2)
        Ch = Cm.reshape(Bsz, L, G, N).repeat_interleave(H // G, dim=2)
        h = torch.zeros(Bsz, H, P, N, dtype=torch.float64)
        ys = []
        for t in range(L):
            dtt = dt[:, t, :, None, None]
            h = h * torch.exp(dtt * A[None, :, None, None]) + dtt * xs[:, t, :, :, None] * Bh[:, t, :, None, :]
            ys.append(torch.einsum("bhpn,bhn->bhp", h, Ch[:, t]) + W[p + "mixer.D"][None, :, None] * xs[:, t])
        y = torch.stack(ys, 1).reshape(Bsz, L, DI) * F.silu(z)
        yg = y.reshape(Bsz, L, G, DI // G)
        yg = yg * torch.rsqrt(yg.pow(2).mean(-1, keepdim=True) + eps)
        y = yg.reshape(Bsz, L, DI) * W[p + "mixer.norm.weight"]
        x = x + y @ W[p + "mixer.out_proj.weight"].T
        conv_state = F.pad(xbc, (0, 0, max(0, K - 1 - L), 0))[:, -(K - 1):, :].transpose(1, 2)
        states.append((conv_state, h))
    head = W.get("lm_head.weight", W["backbone.embeddings.weight"])
    logits = rms(x, W["backbone.norm_f.weight"], eps) @ head.T
    return logits, states, dt


# ---- HF cache access (API differs between transformers versions) ----

def describe(obj):
    return f"{type(obj).__module__}.{type(obj).__name__}: " + ", ".join(a for a in dir(obj) if not a.startswith("__"))


def cache_layer_states(cache, i):
    conv = ssm = None
    layers = getattr(cache, "layers", None)
    if layers is not None and not torch.is_tensor(layers):
        layer = layers[i]
        for a in ("conv_states", "conv_state"):
            if getattr(layer, a, None) is not None:
                conv = getattr(layer, a)
                break
        for a in ("recurrent_states", "ssm_states", "ssm_state", "recurrent_state"):
            if getattr(layer, a, None) is not None:
                ssm = getattr(layer, a)
                break
    if conv is None and getattr(cache, "conv_states", None) is not None:
        conv = cache.conv_states[i]
    if ssm is None:
        for a in ("ssm_states", "recurrent_states"):
            if getattr(cache, a, None) is not None:
                ssm = getattr(cache, a)[i]
                break
    # transformers 5.x LinearAttentionLayer: {state_idx: tensor}, Mamba-2 uses state 0
    conv = conv[0] if isinstance(conv, dict) else conv
    ssm = ssm[0] if isinstance(ssm, dict) else ssm
    if not torch.is_tensor(conv) or not torch.is_tensor(ssm):
        raise RuntimeError(f"no conv/ssm state found for layer {i} in {describe(cache)}")
    return conv.detach().float(), ssm.detach().float()


# ---- output helpers ----

def rounded(t, nd=6):
    if isinstance(t, torch.Tensor):
        t = t.detach().double().tolist()
    if isinstance(t, list):
        return [rounded(v, nd) for v in t]
    r = round(float(t), nd)
    return 0.0 if r == 0 else r


def max_abs(a, b):
    return float((a.double() - b.double()).abs().max())


def greedy(model, prompt, real_vocab):
    ids = prompt.clone()
    for _ in range(GREEDY_NEW):
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits[0, -1].clone()
        logits[EOS] = -INF
        logits[real_vocab:] = -INF
        ids = torch.cat([ids, logits.argmax().view(1, 1)], dim=1)
    return ids


def dt_clamp_facts(model, f, ids, checks, log):
    """How much of softplus(dt + dt_bias) lies above the limit (clamp-pad must clip for real)."""
    hi, store, hooks = f["dt_limit"][1], [], []
    for layer in model.backbone.layers:
        def hook(mod, inp, outp, mixer=layer.mixer):
            store.append(F.softplus(outp[..., -f["n_heads"]:] + mixer.dt_bias))
        hooks.append(layer.mixer.in_proj.register_forward_hook(hook))
    with torch.no_grad():
        model(input_ids=ids, use_cache=False)
    for hk in hooks:
        hk.remove()
    allv = torch.cat([s.flatten() for s in store])
    frac = float((allv > hi).double().mean())
    checks["dt_fraction_above_limit_case0"] = frac
    checks["dt_range_case0_before_clamp"] = [float(allv.min()), float(allv.max())]
    log(f"[{f['name']}] dt above {hi}: {frac:.3f} of values, range {float(allv.min()):.4f}..{float(allv.max()):.4f}")


def case0_states(model, f, ids, ref_states, checks, log):
    """Final per-layer states after case 0, from HF's cache (the float64 reference if unreadable)."""
    name = f["name"]
    conv_list, ssm_list = [], []
    source = "HF cache after model(case 0 ids, use_cache=True); conv_state = its last K-1 columns"
    try:
        with torch.no_grad():
            res = model(input_ids=ids, use_cache=True)
        cache = getattr(res, "cache_params", None)
        if cache is None:
            cache = getattr(res, "past_key_values", None)
        log(f"[{name}] cache: {describe(cache)}")
        for i in range(f["n_layer"]):
            conv, ssm = cache_layer_states(cache, i)
            if i == 0:
                log(f"[{name}] HF conv_state {tuple(conv.shape)}, ssm_state {tuple(ssm.shape)}")
            conv = conv[..., 1:]  # HF keeps K columns; the oldest is never used again
            checks[f"conv_state_layer{i}_hf_vs_float64_sequential"] = max_abs(conv, ref_states[i][0])
            checks[f"ssm_state_layer{i}_hf_vs_float64_sequential"] = max_abs(ssm, ref_states[i][1])
            conv_list.append(conv)
            ssm_list.append(ssm)
    except Exception:  # keep going: the float64 reference provides the states instead
        log(f"[{name}] HF cache states unavailable:\n{traceback.format_exc()}")
        conv_list = [s[0].float() for s in ref_states]
        ssm_list = [s[1].float() for s in ref_states]
        source = "float64 sequential reference in make_fixtures.py (HF cache unreadable)"
    return {
        "case_index": 0,
        "source": source,
        "conv_state": [rounded(c) for c in conv_list],
        "ssm_state": [rounded(s) for s in ssm_list],
    }


def make_fixture(f, out_root, log):
    name = f["name"]
    out = os.path.join(out_root, name)
    os.makedirs(os.path.join(out, "hf"), exist_ok=True)
    os.makedirs(os.path.join(out, "mamba_ssm"), exist_ok=True)
    torch.manual_seed(f["seed"])
    gen = torch.Generator().manual_seed(f["seed"])
    cfg = hf_config(f)
    model = Mamba2ForCausalLM(cfg).eval()
    randomize(model, f, gen)
    norm_cls, native_grouped = patch_gated_norm(model, f["n_groups"])
    log(f"[{name}] gated norm class {norm_cls}; HF's own forward grouped for G={f['n_groups']}: {native_grouped}")

    # Checkpoints
    model.save_pretrained(os.path.join(out, "hf"))
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if f["tied"]:
        sd.pop("lm_head.weight", None)
    ssm_sd = {}
    for k, v in sd.items():
        ssm_sd[k.replace("backbone.embeddings.", "backbone.embedding.")] = v
    if f["tied"]:  # as a tied mamba_ssm model's state_dict: both keys, one storage
        ssm_sd["lm_head.weight"] = ssm_sd["backbone.embedding.weight"]
    torch.save(ssm_sd, os.path.join(out, "mamba_ssm", "pytorch_model.bin"))
    with open(os.path.join(out, "mamba_ssm", "config.json"), "w") as fh:
        json.dump(mamba_ssm_config(f), fh, indent=1)

    real_vocab = f["raw_vocab"]
    vocab_rows = cfg.vocab_size
    ref_sd = dict(sd)
    if not f["tied"]:
        ref_sd["lm_head.weight"] = model.lm_head.weight.detach()
    checks = {}

    # Cases
    cases = []
    data_gen = torch.Generator().manual_seed(f["seed"] + 1)
    final_states = None
    for bi, (b, L) in enumerate(CASE_SHAPES):
        ids = torch.randint(0, real_vocab, (b, L), generator=data_gen)
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits.detach().float()
        ref_logits, ref_states, _ = sequential_reference(ref_sd, f, ids)
        checks[f"logits_{b}x{L}_vs_float64_sequential"] = max_abs(logits, ref_logits)
        cases.append({"input_ids": ids.tolist(), "logits": rounded(logits)})
        if bi == 0:
            final_states = case0_states(model, f, ids, ref_states, checks, log)

    # Greedy
    prompt = torch.randint(0, real_vocab, (1, GREEDY_PROMPT), generator=data_gen)
    out_ids = greedy(model, prompt, real_vocab)

    if f["dt_limit"][1] != INF:
        dt_clamp_facts(model, f, torch.tensor(cases[0]["input_ids"]), checks, log)

    # Reload both checkpoints and check they give the same logits
    try:
        with torch.no_grad():
            m2 = Mamba2ForCausalLM.from_pretrained(os.path.join(out, "hf")).eval()
            for layer in m2.backbone.layers:
                layer.mixer.norm.fixture_group_size = layer.mixer.norm.weight.shape[0] // f["n_groups"]
            ids0 = torch.tensor(cases[0]["input_ids"])
            checks["hf_reload_logits_max_abs"] = max_abs(m2(input_ids=ids0).logits, model(input_ids=ids0).logits)
            loaded = torch.load(os.path.join(out, "mamba_ssm", "pytorch_model.bin"), weights_only=True)
            checks["mamba_ssm_keys"] = len(loaded)
            checks["mamba_ssm_max_abs_vs_hf"] = max(
                max_abs(loaded[k.replace("backbone.embeddings.", "backbone.embedding.")], v) for k, v in sd.items())
    except Exception:
        log(f"[{name}] reload check failed:\n{traceback.format_exc()}")

    ref = {
        "spec": name,
        "covers": f["covers"],
        "cases": cases,
        "greedy": {"input_ids": prompt.tolist(), "output_ids": out_ids.tolist(), "eos_token_id": EOS},
        "gated_norm": ("grouped (patched)" if f["n_groups"] > 1
                       else "single group (grouped and full-width forms agree)"),
        "hf_native_gated_norm_grouped": native_grouped,
        "final_states": final_states,
        "checks": checks,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    if vocab_rows != real_vocab:
        ref["greedy"]["real_vocab_size"] = real_vocab
        ref["greedy"]["note"] = f"argmax over ids < {real_vocab} (padded rows masked) and != eos"
    with open(os.path.join(out, "reference.json"), "w") as fh:
        json.dump(ref, fh, separators=(",", ":"))
    log(f"[{name}] checks: {json.dumps(checks)}")
    log(f"[{name}] greedy: {out_ids.tolist()}")


def run_fixtures(doc, jobs):
    """The command line of the fixture scripts: build each (fixture, make) job, or those named by --only."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out", required=True, help="output directory (e.g. test/fixtures)")
    ap.add_argument("--only", nargs="*", help="fixture names to build (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    log = lambda s: print(s, flush=True)  # noqa: E731
    log(f"torch {torch.__version__}, transformers {transformers.__version__}")
    failed = []
    for f, make in jobs:
        if args.only and f["name"] not in args.only:
            continue
        try:
            make(f, args.out, log)
        except Exception:
            log(f"[{f['name']}] FAILED:\n{traceback.format_exc()}")
            failed.append(f["name"])
    if failed:
        sys.exit(f"failed: {failed}")


def main():
    run_fixtures(__doc__, [(f, make_fixture) for f in FIXTURES])


if __name__ == "__main__":
    main()
