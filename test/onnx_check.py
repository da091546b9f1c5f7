"""ONNX's own tools on exported models: the checker, strict shape inference, and the reference
evaluator (onnx.reference, a second runtime) against ONNX Runtime on a prefill and one step.

    python test/onnx_check.py DIR [DIR...]     one JSON line per model directory on stdout

Each DIR is an export (model.onnx + mamba2-onnx.json). The graph I/O comes from mamba2-onnx.json
(roles, not spelled names). Per model:
  checker           onnx.checker.check_model(full_check=True)
  shape_inference   onnx.shape_inference.infer_shapes(check_type, strict_mode, data_prop)
  prefill, step     max |evaluator − ORT| per output over B = 2 rows of L = 11 ids, then one token
                    each through the state (each runtime continues from its own prefill states)
Needs onnx and numpy; the comparison also needs onnxruntime (else "evaluator" says why it did not run).

The evaluator has no com.microsoft ops, so this file carries numpy versions of the three the
exporter emits (LinearAttention 'linear'/'gated', CausalConvWithState ndim 1, MatMulNBits), written
from ORT's ContribOperators.md like contrib-ops/*/reference.ts. Its Scan takes scan axis 0 only, so
Scans with other axes are rewritten first: a Transpose moves each scan axis to 0 (same math).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

BATCH, LENGTH = 2, 11


# ---- com.microsoft ops the exporter emits (numpy, float64 accumulation where it matters) ----


class LinearAttention(OpRun):
    """S_t = exp(decay_t)·S_{t−1} + k_t ⊗ v_t ('gated'; 'linear' without decay), o_t = scale·q_tᵀ S_t."""

    op_domain = "com.microsoft"

    def _run(self, query, key, value, past_state=None, decay=None, beta=None, **attrs):  # noqa: ARG002
        # attrs: the node's attributes (plus the defaults of ONNX's opset-27 LinearAttention, same name)
        update_rule, scale = attrs.get("update_rule", "linear"), attrs.get("scale") or 0.0
        q_num_heads, kv_num_heads = attrs["q_num_heads"], attrs["kv_num_heads"]
        if update_rule not in ("linear", "gated"):
            raise NotImplementedError(f"LinearAttention update_rule {update_rule!r}")
        b, t, _ = query.shape
        hq, hkv = int(q_num_heads), int(kv_num_heads)
        dk = query.shape[2] // hq
        dv = value.shape[2] // hkv
        hk = key.shape[2] // dk
        sc = scale if scale else 1.0 / np.sqrt(dk)
        q = query.reshape(b, t, hq, dk).astype(np.float64)
        k = key.reshape(b, t, hk, dk).astype(np.float64)
        v = value.reshape(b, t, hkv, dv).astype(np.float64)
        s = np.zeros((b, hkv, dk, dv)) if past_state is None else past_state.astype(np.float64).copy()
        h_out = max(hq, hkv)
        out = np.zeros((b, t, h_out, dv))
        k_of = [h // (hkv // hk) for h in range(hkv)]  # key head of each state head
        for step in range(t):
            if decay is not None:
                g = np.exp(decay[:, step].astype(np.float64))  # [B,H_kv] or [B,H_kv·d_k]
                g = g.reshape(b, hkv, 1, 1) if g.shape[1] == hkv else g.reshape(b, hkv, dk, 1)
                s = g * s
            s = s + k[:, step, k_of, :, None] * v[:, step, :, None, :]  # [B,H_kv,d_k,d_v]
            for h in range(hkv):
                if hq >= hkv:  # GQA: several query heads read state h
                    for j in range(hq // hkv):
                        hQ = h * (hq // hkv) + j
                        out[:, step, hQ] = sc * np.einsum("bp,bpv->bv", q[:, step, hQ], s[:, h])
                else:  # inverse GQA: one shared query head
                    out[:, step, h] = sc * np.einsum("bp,bpv->bv", q[:, step, (h * hq) // hkv], s[:, h])
        return out.reshape(b, t, h_out * dv).astype(query.dtype), s.astype(query.dtype)


class CausalConvWithState(OpRun):
    """Depthwise causal conv over concat(past_state, input) along time, optional SiLU, last K−1 columns as the state."""

    op_domain = "com.microsoft"

    def _run(self, input, weight, bias=None, past_state=None, **attrs):  # noqa: A002
        activation, channels_last = attrs.get("activation") or "none", int(attrs.get("channels_last") or 0)
        ndim, dilation, state_window = attrs.get("ndim") or 1, attrs.get("dilation") or 1, attrs.get("state_window") or 0
        if int(ndim) != 1 or int(dilation) != 1 or int(state_window) != 0:
            raise NotImplementedError("CausalConvWithState: ndim 1, dilation 1, no state_window only")
        x = np.swapaxes(input, 1, 2) if channels_last else input  # [B,C,L]
        past = None if past_state is None else (np.swapaxes(past_state, 1, 2) if channels_last else past_state)
        b, c, length = x.shape
        k = weight.shape[2]
        if past is None:
            past = np.zeros((b, c, k - 1), dtype=x.dtype)
        xx = np.concatenate([past, x], axis=2).astype(np.float64)  # [B,C,K−1+L]
        w = weight[:, 0, :].astype(np.float64)  # [C,K]
        y = sum(w[None, :, j, None] * xx[:, :, j : j + length] for j in range(k))
        if bias is not None:
            y = y + bias.astype(np.float64)[None, :, None]
        if activation in ("silu", "swish"):
            y = y / (1.0 + np.exp(-y))
        state = xx[:, :, length:]  # [B,C,K−1]
        y, state = y.astype(input.dtype), state.astype(input.dtype)
        if channels_last:
            return np.swapaxes(y, 1, 2), np.swapaxes(state, 1, 2)
        return y, state


class MatMulNBits(OpRun):
    """Y = A · dequant(B)ᵀ (+ bias); dequant = (q − zero_point)·scale per block along K, low bits first."""

    op_domain = "com.microsoft"

    def _run(self, a, b, scales, zero_points=None, g_idx=None, bias=None, **attrs):
        if g_idx is not None:
            raise NotImplementedError("MatMulNBits with g_idx")
        # accuracy_level only lets ORT compute less exactly; the reference dequantizes exactly
        k_, n_, bits, bs = int(attrs["K"]), int(attrs["N"]), int(attrs.get("bits") or 4), int(attrs["block_size"])
        kb = -(-k_ // bs)
        raw = b.reshape(n_, kb * bs * bits // 8)
        if bits == 8:
            q = raw.astype(np.float64)
        elif bits == 4:
            q = np.stack([raw & 0x0F, raw >> 4], axis=-1).reshape(n_, kb * bs).astype(np.float64)
        else:
            raise NotImplementedError(f"MatMulNBits bits {bits}")
        if zero_points is None:
            zp = np.full((n_, kb), 2 ** (bits - 1), dtype=np.float64)
        elif bits == 8:
            zp = zero_points.reshape(n_, -1)[:, :kb].astype(np.float64)
        else:
            zr = zero_points.reshape(n_, -1)
            zp = np.stack([zr & 0x0F, zr >> 4], axis=-1).reshape(n_, -1)[:, :kb].astype(np.float64)
        s = scales.reshape(n_, kb).astype(np.float64)
        w = ((q.reshape(n_, kb, bs) - zp[:, :, None]) * s[:, :, None]).reshape(n_, kb * bs)[:, :k_]  # [N,K]
        y = a.astype(np.float64) @ w.T
        if bias is not None:
            y = y + bias.astype(np.float64)
        return (y.astype(a.dtype),)


CONTRIB_OPS = [LinearAttention, CausalConvWithState, MatMulNBits]


# ---- Scan axes → 0 for the evaluator ----


def _perm_to_front(rank: int, axis: int) -> list[int]:
    return [axis] + [i for i in range(rank) if i != axis]


def _perm_from_front(rank: int, axis: int) -> list[int]:
    return list(range(1, axis + 1)) + [0] + list(range(axis + 1, rank))


def _scan_axes_to_zero(graph: onnx.GraphProto, ranks: dict[str, int], counter: list[int]) -> None:
    nodes = []
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _scan_axes_to_zero(a.g, ranks, counter)
        attrs = {a.name: a for a in node.attribute}
        if node.op_type != "Scan" or node.domain not in ("", "ai.onnx"):
            nodes.append(node)
            continue
        n_scan_in = attrs["num_scan_inputs"].i
        in_axes = list(attrs["scan_input_axes"].ints) if "scan_input_axes" in attrs else []
        out_axes = list(attrs["scan_output_axes"].ints) if "scan_output_axes" in attrs else []
        n_state = len(node.input) - n_scan_in
        new_in = list(node.input)
        for j, ax in enumerate(in_axes):
            name = node.input[n_state + j]
            rank = ranks[name]
            ax = ax % rank
            if ax == 0:
                continue
            counter[0] += 1
            t = f"{name}__scan_axis0_{counter[0]}"
            nodes.append(helper.make_node("Transpose", [name], [t], perm=_perm_to_front(rank, ax)))
            new_in[n_state + j] = t
        new_out = list(node.output)
        post = []
        for j, ax in enumerate(out_axes):
            name = node.output[n_state + j]
            rank = ranks[name]
            ax = ax % rank
            if ax == 0:
                continue
            counter[0] += 1
            t = f"{name}__scan_axis0_{counter[0]}"
            new_out[n_state + j] = t
            post.append(helper.make_node("Transpose", [t], [name], perm=_perm_from_front(rank, ax)))
        kept = [a for a in node.attribute if a.name not in ("scan_input_axes", "scan_output_axes")]
        scan = helper.make_node("Scan", new_in, new_out, name=node.name)
        scan.attribute.extend(kept)
        nodes.append(scan)
        nodes.extend(post)
    del graph.node[:]
    graph.node.extend(nodes)


def _value_ranks(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    ranks: dict[str, int] = {}

    def visit(g: onnx.GraphProto) -> None:
        for vi in list(g.input) + list(g.output) + list(g.value_info):
            if vi.type.tensor_type.HasField("shape"):
                ranks[vi.name] = len(vi.type.tensor_type.shape.dim)
        for init in g.initializer:
            ranks[init.name] = len(init.dims)
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    visit(a.g)

    visit(inferred.graph)
    return ranks


def for_evaluator(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose Scans scan along axis 0 (Transposes around them), for onnx.reference."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    _scan_axes_to_zero(m.graph, _value_ranks(model), [0])
    return m


# ---- feeds from mamba2-onnx.json ----


def _feeds(meta: dict, ids: np.ndarray, past: dict | None) -> dict[str, np.ndarray]:
    """input_ids, attention_mask if the contract has one, and every state input (zeros, or `past` by role+layer)."""
    b, length = ids.shape
    feeds: dict[str, np.ndarray] = {}
    sym = {}
    for e in meta["io"]["inputs"]:
        if e["role"] == "input_ids":
            feeds[e["name"]] = ids.astype(np.int64)
            sym[e["shape"][0]] = b
    past_len = 0
    for e in meta["io"]["inputs"]:
        role = e["role"]
        if role == "input_ids":
            continue
        key = (role, e.get("layer"))
        if past is not None and key in past:
            feeds[e["name"]] = past[key]
            if role in ("key_cache", "value_cache"):
                past_len = past[key].shape[2]
            continue
        if role == "attention_mask":
            continue
        shape = [d if isinstance(d, int) else sym.get(d, 0) for d in e["shape"]]
        feeds[e["name"]] = np.zeros(shape, dtype=np.dtype(e["dtype"]))
    for e in meta["io"]["inputs"]:
        if e["role"] == "attention_mask":
            feeds[e["name"]] = np.ones((b, past_len + length), dtype=np.dtype(e["dtype"]))
    return feeds


def _states(meta: dict, outputs: dict[str, np.ndarray]) -> dict:
    return {(e["role"], e.get("layer")): outputs[e["name"]] for e in meta["io"]["outputs"] if e["role"] != "logits"}


def _compare(ref: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> dict:
    worst, where = 0.0, None
    for name, r in ref.items():
        g = got[name]
        if r.shape != g.shape:
            return {"error": f"{name}: shape {list(r.shape)} (evaluator) vs {list(g.shape)} (ORT)"}
        if r.size == 0:
            continue
        d = float(np.max(np.abs(r.astype(np.float64) - g.astype(np.float64))))
        if not np.isfinite(d):
            return {"error": f"{name}: non-finite values"}
        if d >= worst:
            worst, where = d, name
    scale = max(float(np.max(np.abs(r))) for r in ref.values() if r.size)
    return {"max_abs": worst, "worst_output": where, "max_ref": scale, "outputs": len(ref)}


def _run_both(model_path: Path, model: onnx.ModelProto, meta: dict) -> dict:
    try:
        import onnxruntime as ort
    except ImportError:
        return {"evaluator": "not run: onnxruntime is not importable in this Python"}
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    ref = ReferenceEvaluator(for_evaluator(model), new_ops=CONTRIB_OPS)
    names = [o.name for o in model.graph.output]
    vocab = int(meta["config"]["vocabSize"])
    rng = np.random.default_rng(16)
    ids = rng.integers(0, vocab, size=(BATCH, LENGTH))
    nxt = rng.integers(0, vocab, size=(BATCH, 1))

    def both(ids_, past_ref, past_ort):
        r = dict(zip(names, ref.run(None, _feeds(meta, ids_, past_ref)), strict=True))
        o = dict(zip(names, sess.run(None, _feeds(meta, ids_, past_ort)), strict=True))
        return r, o

    r0, o0 = both(ids, None, None)
    r1, o1 = both(nxt, _states(meta, r0), _states(meta, o0))
    return {"evaluator": "ok", "prefill": _compare(r0, o0), "step": _compare(r1, o1)}


def check(directory: Path) -> dict:
    out: dict = {"dir": str(directory)}
    path = directory / "model.onnx"
    meta = json.loads((directory / "mamba2-onnx.json").read_text())
    model = onnx.load(str(path))
    out["opsets"] = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    out["ir_version"] = model.ir_version
    try:
        onnx.checker.check_model(model, full_check=True)
        out["checker"] = "ok"
    except Exception as e:  # noqa: BLE001 - the message is the result
        out["checker"] = f"{type(e).__name__}: {str(e).strip()[:600]}"
    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
        out["shape_inference"] = "ok"
    except Exception as e:  # noqa: BLE001
        out["shape_inference"] = f"{type(e).__name__}: {str(e).strip()[:600]}"
    try:
        out.update(_run_both(path, model, meta))
    except Exception as e:  # noqa: BLE001
        out["evaluator"] = f"{type(e).__name__}: {str(e).strip()[:600]}"
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    for d in argv:
        print(json.dumps(check(Path(d))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
