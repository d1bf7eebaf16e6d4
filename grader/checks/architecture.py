"""Architecture checks: the student's layer graph next to the reference's.

A model is reduced to a list of canonical `LayerSpec`s, one per layer call, read from the
functional graph (outputs back to inputs) rather than from `model.layers`: the graph is
what the model computes, while `model.layers` can hide a layer that is never reached or
miss the order of a branch. Canonical specs make equivalent spellings equal
(`MaxPool2D` / `MaxPooling2D`, `padding=3` / `((3, 3), (3, 3))`, `Activation('relu')` /
`ReLU()`, BatchNormalization `axis=-1` / `axis=3`, ...), so a student is never failed
for spelling, only for computing something else.

Two layer lists are compared by an alignment (edit distance with adjacent swaps), never
position by position: a missing layer shows up as missing instead of shifting every
later row, and a list that is too short can never pass.

Works on models from `keras` (Keras 3) and `tf_keras` (Keras 2 API) through a few
duck-typed adapters (`_history`, `_node_inputs`, `_node_layer`, ...), so nothing here
imports a Keras package.

Decisions:
- A linear `Dense` followed only by a plain activation layer (`Activation('sigmoid')`,
  `Softmax()`, default `ReLU()`) is folded into one spec "Dense 1, sigmoid": both are the
  same computation, and the course writes it either way.
- A Conv activation (`Conv2D(..., activation='relu')`) is split into its own "ReLU" spec
  right after the Conv2D: where BatchNormalization sits relative to the nonlinearity is
  what these assignments grade, and the split makes `Conv2D(activation='relu')` followed
  by BatchNormalization read as "ReLU comes before BatchNormalization", which it is.
- `use_bias=False`, dilation and groups are recorded only when not default; names,
  initializers, regularizers, dtype, momentum and epsilon are ignored (epsilon only
  shows in outputs, which the output checks compare).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from grader.checks import CheckFailed
from grader.results import Table

MISSING = "—"

# ---------------------------------------------------------------------------- specs

_ALIASES = {
    "MaxPool1D": "MaxPooling1D", "MaxPool2D": "MaxPooling2D", "MaxPool3D": "MaxPooling3D",
    "AvgPool1D": "AveragePooling1D", "AvgPool2D": "AveragePooling2D",
    "AvgPool3D": "AveragePooling3D", "Convolution1D": "Conv1D", "Convolution2D": "Conv2D",
    "Convolution3D": "Conv3D", "BatchNormalizationV1": "BatchNormalization",
    "BatchNormalizationV2": "BatchNormalization", "GlobalAvgPool2D": "GlobalAveragePooling2D",
    "GlobalMaxPool2D": "GlobalMaxPooling2D",
}
_ACTIVATION_KINDS = {"relu": "ReLU", "sigmoid": "Sigmoid", "softmax": "Softmax", "tanh": "Tanh"}
_FOLDABLE = frozenset({*_ACTIVATION_KINDS.values(), "Activation"})
_CONV = re.compile(r"^(Conv\dD|Conv\dDTranspose|SeparableConv\dD|DepthwiseConv\dD)$")
_POOL = re.compile(r"^(MaxPooling|AveragePooling)\dD$")
_DROPOUT = re.compile(r"^(Dropout|SpatialDropout\dD|GaussianDropout|AlphaDropout)$")
_COMMUTATIVE = frozenset({"Add", "Multiply", "Average", "Maximum", "Minimum"})
_IGNORED_KEYS = frozenset({
    "name", "trainable", "dtype", "batch_input_shape", "batch_shape", "input_shape",
    "input_dim", "build_config", "compile_config", "seed", "sparse", "ragged",
    "quantization_config", "synchronized", "autocast", "momentum", "epsilon",
    "renorm", "renorm_clipping", "renorm_momentum", "activity_regularizer",
})


@dataclass(frozen=True)
class LayerSpec:
    """One layer call in canonical form.

    Equality ignores `name`, so the reference's specs equal an equivalent student's
    specs even though Keras named the layers differently; `inputs` is part of equality
    because it is the graph's shape.
    """

    kind: str
    params: tuple[tuple[str, object], ...]
    name: str = field(compare=False)
    inputs: tuple[int, ...] = ()

    def param(self, key: str, default: object = None) -> object:
        return dict(self.params).get(key, default)

    def same_layer(self, other: "LayerSpec") -> bool:
        """Same computation regardless of where in the graph it sits."""
        return self.kind == other.kind and self.params == other.params

    def label(self) -> str:
        text, used = _describe(self)
        rest = [f"{k}={_fmt(v)}" for k, v in self.params if k not in used]
        return f"{text} ({', '.join(rest)})" if rest else text


def _describe(spec: LayerSpec) -> tuple[str, set[str]]:
    """Each family's label lists every parameter it records, so two different specs
    never print the same (leftover parameters are appended by `label`)."""
    kind, p = spec.kind, dict(spec.params)
    if _CONV.match(kind):
        return _describe_conv(kind, p)
    if _POOL.match(kind):
        return _describe_pool(kind, p)
    if kind.startswith("ZeroPadding"):
        return f"{kind} {_fmt_padding(p.get('padding'))}", {"padding"}
    if kind == "BatchNormalization":
        return _describe_bn(p)
    if kind == "Dense":
        act = p.get("activation", "linear")
        text = f"Dense {p.get('units')}" + ("" if act == "linear" else f", {act}")
        return text + (", no bias" if p.get("use_bias") is False else ""), {"units", "activation", "use_bias"}
    if _DROPOUT.match(kind):
        return f"{kind} {_fmt(p.get('rate'))}", {"rate"}
    if kind == "Activation":
        return f"Activation {p.get('function')}", {"function"}
    return kind, set()


def _describe_conv(kind: str, p: dict) -> tuple[str, set[str]]:
    filters = f" {p['filters']}" if "filters" in p else ""
    text = f"{kind}{filters} @ {_dims(p.get('kernel_size'))}, stride {_stride(p.get('strides'))}"
    if p.get("padding", "valid") != "valid":
        text += f", {p['padding']}"
    if "dilation_rate" in p:
        text += f", dilation {_stride(p['dilation_rate'])}"
    if "groups" in p:
        text += f", {p['groups']} groups"
    if "depth_multiplier" in p:
        text += f", depth multiplier {p['depth_multiplier']}"
    if p.get("use_bias") is False:
        text += ", no bias"
    return text, {"filters", "kernel_size", "strides", "padding", "dilation_rate", "groups",
                  "depth_multiplier", "use_bias"}


def _describe_pool(kind: str, p: dict) -> tuple[str, set[str]]:
    pool, strides, padding = p.get("pool_size"), p.get("strides"), p.get("padding", "valid")
    text = f"{kind} {_dims(pool)}"
    if strides != pool or padding != "valid":
        text += f", stride {_stride(strides)}" + ("" if padding == "valid" else f", {padding}")
    return text, {"pool_size", "strides", "padding"}


def _describe_bn(p: dict) -> tuple[str, set[str]]:
    axis = p.get("axis")
    if axis == "channels":
        text = "BatchNormalization (channels)"
    else:
        word = "axes" if isinstance(axis, tuple) else "axis"
        text = f"BatchNormalization ({word} {_fmt(axis)} — not the channel axis)"
    text += "".join(f", {k}={v}" for k in ("center", "scale") if (v := p.get(k)) is not None)
    return text, {"axis", "center", "scale"}


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return str(value)


def _dims(value: object) -> str:
    return "x".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def _stride(value: object) -> str:
    if isinstance(value, tuple) and len(set(value)) == 1:
        return str(value[0])
    return _dims(value)


def _fmt_padding(value: object) -> str:
    """`((3, 3), (3, 3))` reads as "(3, 3)", the form the course writes."""
    if isinstance(value, tuple) and all(isinstance(v, tuple) and len(set(v)) == 1 for v in value):
        return _fmt(tuple(v[0] for v in value))
    return _fmt(value)


# ------------------------------------------------------------------ canonical params

def _plain(value: object) -> object:
    """Config values as hashable plain Python: ListWrapper/list -> tuple, 0-d arrays ->
    scalars, so specs can be compared and hashed."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    if isinstance(value, dict):
        return tuple(sorted((str(k), _plain(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ListWrapper":
        return tuple(_plain(v) for v in value)
    return value


def _ntuple(value: object, n: int) -> tuple | None:
    if value is None:
        return None
    value = _plain(value)
    return tuple(value) if isinstance(value, tuple) else (value,) * n


def _rank_of_kind(kind: str) -> int:
    match = re.search(r"(\d)D", kind)
    return int(match.group(1)) if match else 2


def _activation_name(value: object) -> str:
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, dict):
        inner = value.get("config")
        return (inner if isinstance(inner, str) else str(value.get("class_name", "?"))).lower()
    return getattr(value, "__name__", str(value)).lower()


def _activation_spec(name: str) -> tuple[str, tuple]:
    kind = _ACTIVATION_KINDS.get(name)
    return (kind, ()) if kind else ("Activation", (("function", name),))


def _params_conv(kind: str, cfg: dict) -> tuple:
    n = _rank_of_kind(kind)
    params: list[tuple[str, object]] = []
    if "filters" in cfg:
        params.append(("filters", int(cfg["filters"])))
    params += [("kernel_size", _ntuple(cfg.get("kernel_size"), n)),
               ("strides", _ntuple(cfg.get("strides", 1), n)),
               ("padding", str(cfg.get("padding", "valid")).lower())]
    dilation = _ntuple(cfg.get("dilation_rate", 1), n)
    if dilation is not None and set(dilation) != {1}:
        params.append(("dilation_rate", dilation))
    if cfg.get("groups", 1) != 1:
        params.append(("groups", int(cfg["groups"])))
    if cfg.get("depth_multiplier", 1) != 1:
        params.append(("depth_multiplier", int(cfg["depth_multiplier"])))
    if cfg.get("use_bias", True) is False:
        params.append(("use_bias", False))
    return tuple(params)


def _params_pool(kind: str, cfg: dict) -> tuple:
    n = _rank_of_kind(kind)
    pool = _ntuple(cfg.get("pool_size", 2), n)
    strides = _ntuple(cfg.get("strides"), n) or pool
    return (("pool_size", pool), ("strides", strides), ("padding", str(cfg.get("padding", "valid")).lower()))


def _params_zero_padding(kind: str, cfg: dict) -> tuple:
    n = _rank_of_kind(kind)
    pad = _plain(cfg.get("padding", 1))
    if not isinstance(pad, tuple):
        pad = (pad,) * n
    if n == 1 and len(pad) == 2 and all(isinstance(v, int) for v in pad):
        return (("padding", (pad,)),)
    pad = tuple(v if isinstance(v, tuple) else (v, v) for v in pad)
    return (("padding", pad),)


def _params_bn(cfg: dict, rank: int | None) -> tuple:
    params: list[tuple[str, object]] = [("axis", _bn_axis(_plain(cfg.get("axis", -1)), rank))]
    params += [(k, False) for k in ("center", "scale") if cfg.get(k, True) is False]
    return tuple(params)


def _bn_axis(axis: object, rank: int | None) -> object:
    """"channels" when BatchNormalization normalizes the last axis (-1 and 3 are the same
    axis of a 4-D tensor); otherwise the axis itself, resolved to a positive number."""
    axes = axis if isinstance(axis, tuple) else (axis,)
    if rank is not None:
        axes = tuple(a % rank for a in axes)
    if axes in ((-1,), ((rank or 0) - 1,)):
        return "channels"
    return axes[0] if len(axes) == 1 else axes


def _params_relu(cfg: dict) -> tuple:
    """A default ReLU is plain ReLU; a capped or leaky one keeps its settings."""
    params = []
    if cfg.get("max_value") is not None:
        params.append(("max_value", _plain(cfg["max_value"])))
    for key in ("negative_slope", "threshold"):
        value = _plain(cfg.get(key, 0.0))
        if value:
            params.append((key, value))
    return tuple(params)


def _params_generic(cfg: dict) -> tuple:
    keep = []
    for key, value in cfg.items():
        if key in _IGNORED_KEYS or key.endswith(("_initializer", "_regularizer", "_constraint")):
            continue
        if key == "data_format" and value == "channels_last":
            continue
        keep.append((key, _plain(value)))
    return tuple(keep)


def _canonical(layer: Any, rank: int | None) -> list[tuple[str, tuple, str]]:
    """(kind, params, name) for one layer call: one entry, or two when a Conv carries
    its own activation (split out, see the module's decisions)."""
    raw = type(layer).__name__
    kind = _ALIASES.get(raw, raw)
    cfg = layer.get_config()
    name = str(getattr(layer, "name", raw))
    if _CONV.match(kind):
        act = _activation_name(cfg.get("activation"))
        conv = (kind, _params_conv(kind, cfg), name)
        return [conv] if act == "linear" else [conv, (*_activation_spec(act), f"{name}/activation")]
    if kind == "Activation":
        return [(*_activation_spec(_activation_name(cfg.get("activation"))), name)]
    return [(kind, _params_for(kind, cfg, rank), name)]


def _params_for(kind: str, cfg: dict, rank: int | None) -> tuple:
    if _POOL.match(kind):
        return _params_pool(kind, cfg)
    if kind.startswith("ZeroPadding"):
        return _params_zero_padding(kind, cfg)
    if kind == "BatchNormalization":
        return _params_bn(cfg, rank)
    if kind == "Dense":
        params = (("units", int(cfg["units"])), ("activation", _activation_name(cfg.get("activation"))))
        return params + ((("use_bias", False),) if cfg.get("use_bias", True) is False else ())
    if _DROPOUT.match(kind):
        return (("rate", float(cfg.get("rate", 0.0))),)
    if kind == "ReLU":
        return _params_relu(cfg)
    if kind == "Softmax":
        axis = _plain(cfg.get("axis", -1))
        return () if axis in (-1, (-1,)) else (("axis", axis),)
    if kind == "Flatten":
        return ()
    return _params_generic(cfg)


# ------------------------------------------------------------ Keras 2 / 3 adapters

def _history(tensor: Any) -> tuple[Any, int, int] | None:
    hist = getattr(tensor, "_keras_history", None)
    return (hist[0], int(hist[1]), int(hist[2])) if hist is not None else None


def _inbound_nodes(layer: Any) -> list:
    nodes = getattr(layer, "_inbound_nodes", None)
    return list(nodes if nodes is not None else getattr(layer, "inbound_nodes", ()))


def _flatten(obj: Any) -> list:
    if isinstance(obj, (list, tuple)):
        return [t for item in obj for t in _flatten(item)]
    if isinstance(obj, dict):
        return [t for item in obj.values() for t in _flatten(item)]
    return [] if obj is None else [obj]


def _node_inputs(node: Any) -> list:
    """Keras 2 keeps a flat `keras_inputs`; Keras 3's `input_tensors` is already flat."""
    flat = getattr(node, "keras_inputs", None)
    return _flatten(flat if flat is not None else getattr(node, "input_tensors", ()))


def _node_layer(node: Any) -> Any:
    layer = getattr(node, "operation", None)
    return layer if layer is not None else getattr(node, "layer", None)


def _outbound_layers(layer: Any) -> list:
    return [_node_layer(n) for n in (getattr(layer, "_outbound_nodes", None) or ())]


def _is_input_layer(layer: Any) -> bool:
    return type(layer).__name__ == "InputLayer"


def _is_model(layer: Any) -> bool:
    return getattr(layer, "layers", None) is not None and callable(getattr(type(layer), "summary", None))


def _model_outputs(model: Any) -> list | None:
    """None for a Sequential that was never built (no input shape): Keras 3 raises,
    Keras 2 returns None."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    flat = _flatten(outputs)
    return flat or None


def _model_inputs(model: Any) -> list:
    try:
        return _flatten(model.inputs)
    except (AttributeError, ValueError):
        return []


def _shape(tensor: Any) -> tuple | None:
    try:
        return tuple(None if d is None else int(d) for d in tuple(tensor.shape))
    except (AttributeError, TypeError, ValueError):
        return None


# ------------------------------------------------------------------- graph walking

@dataclass(frozen=True)
class _Call:
    """One layer call found by the walk, before canonicalization."""

    layer: Any
    inputs: tuple[int, ...]
    reads_input: int
    input_shape: tuple | None


@dataclass
class _Walker:
    """Depth-first from the outputs; calls are appended after their inputs, which
    makes the list topological. Nested models are inlined: their inputs are resolved
    to the tensors the outer call passed in."""

    calls: list = field(default_factory=list)
    index: dict = field(default_factory=dict)
    reached: dict = field(default_factory=dict)  # id -> layer

    def resolve(self, tensor: Any, frames: tuple = ()) -> int | None:
        """Index of the call producing `tensor`; -1 for a model input; None if unknown."""
        hist = _history(tensor)
        if hist is None:
            return None
        layer, node_index, tensor_index = hist
        self.reached[id(layer)] = layer
        if _is_input_layer(layer):
            return self._leave_nested(tensor, frames)
        node = _inbound_nodes(layer)[node_index]
        inner_outputs = _model_outputs(layer) if _is_model(layer) else None
        if inner_outputs:
            frame = (layer, tuple(_node_inputs(node)), id(node))
            return self.resolve(inner_outputs[tensor_index], frames + (frame,))
        key = (id(node), tuple(f[2] for f in frames))
        if key not in self.index:
            self.index[key] = self._add(layer, node, frames)
        return self.index[key]

    def _leave_nested(self, tensor: Any, frames: tuple) -> int | None:
        if not frames:
            return -1
        model, outer_inputs, _ = frames[-1]
        inner = _model_inputs(model)
        position = next((i for i, t in enumerate(inner) if t is tensor), 0)
        if position >= len(outer_inputs):
            return None
        return self.resolve(outer_inputs[position], frames[:-1])

    def _add(self, layer: Any, node: Any, frames: tuple) -> int:
        tensors = _node_inputs(node)
        sources = [self.resolve(t, frames) for t in tensors]
        call = _Call(layer, tuple(s for s in sources if s is not None and s >= 0),
                     sum(1 for s in sources if s == -1), _shape(tensors[0]) if tensors else None)
        self.calls.append(call)
        return len(self.calls) - 1


def _chain_layers(model: Any) -> list:
    out = []
    for layer in model.layers:
        if _is_input_layer(layer):
            continue
        out += _chain_layers(layer) if _is_model(layer) else [layer]
    return out


def _walk(model: Any) -> tuple[list[_Call], tuple[int, ...], dict]:
    outputs = _model_outputs(model)
    if outputs is None:  # unbuilt Sequential: its layers are a chain by definition
        layers = _chain_layers(model)
        calls = [_Call(l, (i - 1,) if i else (), 0 if i else 1, None) for i, l in enumerate(layers)]
        return calls, ((len(calls) - 1,) if calls else ()), {id(l): l for l in layers}
    walker = _Walker()
    ends = [walker.resolve(t) for t in outputs]
    return walker.calls, tuple(e for e in ends if e is not None and e >= 0), walker.reached


def _disconnected(model: Any, reached: dict) -> tuple[str, ...]:
    """Layers the student created and called but whose result never reaches the
    output. Found by walking forward from every reached layer (Keras forgets them in
    `model.layers` once the Model is built), plus any listed layer not reached."""
    seen, found, frontier = set(reached), [], list(reached.values())
    while frontier:
        for consumer in _outbound_layers(frontier.pop(0)):
            if consumer is not None and id(consumer) not in seen:
                seen.add(id(consumer))
                found.append(consumer)
                frontier.append(consumer)
    found += [l for l in getattr(model, "layers", ()) if id(l) not in seen]
    names = [str(l.name) for l in found if not _is_input_layer(l)]
    # A model rebuilt from the sandbox lost them; the sandbox listed them (grader.rebuild).
    names += [n for n in getattr(model, "_grader_disconnected", ()) if n not in names]
    return tuple(names)


# ------------------------------------------------------------------ canonical graph

@dataclass(frozen=True)
class GraphNode:
    """A spec with what the checks need besides it: the Keras layer holding its weights
    (None for an activation split out of a Conv), its input shape, and how many model
    inputs it reads directly."""

    spec: LayerSpec
    layer: Any
    input_shape: tuple | None
    reads_input: int


@dataclass(frozen=True)
class LayerGraph:
    nodes: tuple[GraphNode, ...]
    outputs: tuple[int, ...]
    disconnected: tuple[str, ...]

    @property
    def specs(self) -> list[LayerSpec]:
        return [n.spec for n in self.nodes]

    def consumers(self, i: int) -> tuple[int, ...]:
        return tuple(j for j, n in enumerate(self.nodes) for s in n.spec.inputs if s == i)

    def fan_out(self, i: int) -> int:
        return len(self.consumers(i)) + self.outputs.count(i)

    def fan_in(self, i: int) -> int:
        return len(self.nodes[i].spec.inputs) + self.nodes[i].reads_input

    def input_readers(self) -> tuple[int, ...]:
        return tuple(i for i, n in enumerate(self.nodes) for _ in range(n.reads_input))

    def is_chain(self) -> bool:
        return (len(self.outputs) == 1 and len(self.input_readers()) <= 1
                and all(self.fan_in(i) <= 1 and self.fan_out(i) <= 1 for i in range(len(self.nodes))))


def layer_graph(model: Any) -> LayerGraph:
    calls, outputs, reached = _walk(model)
    nodes, outputs = _expand(calls, outputs)
    nodes, outputs = _fold_activations(nodes, outputs)
    return LayerGraph(tuple(nodes), outputs, _disconnected(model, reached))


def layer_specs(model: Any) -> list[LayerSpec]:
    """Topological order from the graph, so a branch or an unreached layer cannot hide;
    `inputs` hold list indices rather than layer names, so two models built separately
    compare structurally. InputLayers are skipped: `keras.Input` and `input_shape=`
    are the same model."""
    return layer_graph(model).specs


def _expand(calls: list[_Call], outputs: tuple[int, ...]) -> tuple[list[GraphNode], tuple[int, ...]]:
    nodes: list[GraphNode] = []
    tail: dict[int, int] = {}  # call index -> node holding its output
    for i, call in enumerate(calls):
        rank = len(call.input_shape) if call.input_shape is not None else None
        inputs = tuple(tail[s] for s in call.inputs)
        for k, (kind, params, name) in enumerate(_canonical(call.layer, rank)):
            spec = LayerSpec(kind, params, name, inputs)
            nodes.append(GraphNode(spec, call.layer if k == 0 else None, call.input_shape,
                                   call.reads_input if k == 0 else 0))
            inputs = (len(nodes) - 1,)
        tail[i] = len(nodes) - 1
    return nodes, tuple(tail[o] for o in outputs)


def _foldable(graph_nodes: list[GraphNode], outputs: tuple, d: int) -> int | None:
    """The activation node to fold into Dense `d`, if it is d's only consumer."""
    spec = graph_nodes[d].spec
    if spec.kind != "Dense" or spec.param("activation") != "linear" or d in outputs:
        return None
    users = [j for j, n in enumerate(graph_nodes) if d in n.spec.inputs]
    if len(users) != 1:
        return None
    act = graph_nodes[users[0]]
    ok = act.spec.kind in _FOLDABLE and act.spec.inputs == (d,) and act.reads_input == 0
    ok = ok and (act.spec.kind == "Activation" or not act.spec.params)
    return users[0] if ok else None


def _fold_activations(nodes: list[GraphNode], outputs: tuple) -> tuple[list[GraphNode], tuple[int, ...]]:
    target: dict[int, int] = {}
    for d in range(len(nodes)):
        a = _foldable(nodes, outputs, d)
        if a is not None:
            act = nodes[a].spec
            fn = act.param("function") if act.kind == "Activation" else act.kind.lower()
            nodes[d] = replace(nodes[d], spec=replace(nodes[d].spec, params=_with(nodes[d].spec.params, "activation", fn)))
            target[a] = d
    return _renumber(nodes, outputs, target)


def _with(params: tuple, key: str, value: object) -> tuple:
    return tuple((k, value if k == key else v) for k, v in params)


def _renumber(nodes: list[GraphNode], outputs: tuple, merged: dict[int, int]) -> tuple[list[GraphNode], tuple[int, ...]]:
    kept = [i for i in range(len(nodes)) if i not in merged]
    new = {old: k for k, old in enumerate(kept)}
    where = lambda i: new[merged.get(i, i)]  # noqa: E731
    out = [replace(nodes[i], spec=replace(nodes[i].spec, inputs=tuple(where(s) for s in nodes[i].spec.inputs)))
           for i in kept]
    return out, tuple(where(o) for o in outputs)


# -------------------------------------------------------------------------- alignment

@dataclass(frozen=True)
class Row:
    """One aligned row. op: equal, changed (same kind, other settings), missing, extra,
    swapped (two adjacent layers in the other order), moved (a missing layer found
    elsewhere), replaced (another kind of layer in its place)."""

    expected: int | None
    found: int | None
    op: str


@dataclass(frozen=True)
class Alignment:
    rows: tuple[Row, ...]
    pairs: dict  # expected index -> found index, for layers of the same kind

    @property
    def exact(self) -> bool:
        return all(r.op == "equal" for r in self.rows)

    def row_of_found(self, f: int) -> int:
        return next((k for k, r in enumerate(self.rows) if r.found == f), 0)

    def row_of_expected(self, e: int) -> int:
        return next((k for k, r in enumerate(self.rows) if r.expected == e), 0)


_INF = float("inf")


def _sub_cost(e: LayerSpec, f: LayerSpec) -> float:
    if e.same_layer(f):
        return 0.0
    return 1.0 if e.kind == f.kind else _INF


def _swap_cost(exp: Sequence[LayerSpec], fnd: Sequence[LayerSpec], i: int, j: int) -> float:
    """Cost of aligning exp[i-2:i] with fnd[j-2:j] as the same two layers swapped."""
    if i < 2 or j < 2 or exp[i - 2].kind == exp[i - 1].kind:
        return _INF
    return 1.0 + _sub_cost(exp[i - 2], fnd[j - 1]) + _sub_cost(exp[i - 1], fnd[j - 2])


def _distance_table(exp: Sequence[LayerSpec], fnd: Sequence[LayerSpec]) -> list[list[float]]:
    n, m = len(exp), len(fnd)
    d = [[float(i + j) if i == 0 or j == 0 else 0.0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j - 1] + _sub_cost(exp[i - 1], fnd[j - 1]), d[i - 1][j] + 1,
                          d[i][j - 1] + 1, d[i - 2][j - 2] + _swap_cost(exp, fnd, i, j) if i > 1 and j > 1 else _INF)
    return d


def _backtrack(exp: Sequence[LayerSpec], fnd: Sequence[LayerSpec], d: list[list[float]]) -> list[Row]:
    """From the end, preferring a (changed) match, then a swap, then a missing layer,
    then an extra one, so ties put gaps early and rows read naturally."""
    rows: list[Row] = []
    i, j = len(exp), len(fnd)
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + _sub_cost(exp[i - 1], fnd[j - 1]):
            rows.append(Row(i - 1, j - 1, "equal" if exp[i - 1].same_layer(fnd[j - 1]) else "changed"))
            i, j = i - 1, j - 1
        elif i > 1 and j > 1 and d[i][j] == d[i - 2][j - 2] + _swap_cost(exp, fnd, i, j):
            rows += [Row(i - 1, j - 1, "swapped"), Row(i - 2, j - 2, "swapped")]
            i, j = i - 2, j - 2
        elif i and d[i][j] == d[i - 1][j] + 1:
            rows.append(Row(i - 1, None, "missing"))
            i -= 1
        else:
            rows.append(Row(None, j - 1, "extra"))
            j -= 1
    return rows[::-1]


def _pair_moves(rows: list[Row], exp: Sequence[LayerSpec], fnd: Sequence[LayerSpec]) -> list[Row]:
    """A missing layer identical to an extra one elsewhere was moved, not lost."""
    rows = list(rows)
    for a, row in enumerate(rows):
        if row.op != "missing":
            continue
        for b, other in enumerate(rows):
            if other.op == "extra" and exp[row.expected].same_layer(fnd[other.found]):
                rows[a], rows[b] = replace(row, op="moved"), replace(other, op="moved")
                break
    return rows


def _pair_replacements(rows: list[Row]) -> list[Row]:
    """One missing layer next to one extra layer of another kind: a replacement."""
    out: list[Row] = []
    k = 0
    while k < len(rows):
        here, nxt = rows[k], rows[k + 1] if k + 1 < len(rows) else None
        single = nxt is not None and {here.op, nxt.op} == {"missing", "extra"}
        lonely = single and _isolated(rows, k, k + 1)
        if lonely:
            out.append(Row(here.expected if here.expected is not None else nxt.expected,
                           here.found if here.found is not None else nxt.found, "replaced"))
            k += 2
        else:
            out.append(here)
            k += 1
    return out


def _isolated(rows: list[Row], a: int, b: int) -> bool:
    before = rows[a - 1].op if a > 0 else "equal"
    after = rows[b + 1].op if b + 1 < len(rows) else "equal"
    return before not in ("missing", "extra") and after not in ("missing", "extra")


def _pairs(rows: Sequence[Row], exp: Sequence[LayerSpec], fnd: Sequence[LayerSpec]) -> dict:
    pairs = {r.expected: r.found for r in rows if r.op in ("equal", "changed")}
    for k, r in enumerate(rows):
        if r.op == "swapped" and k + 1 < len(rows) and rows[k + 1].op == "swapped" and r.expected not in pairs:
            pairs[r.expected], pairs[rows[k + 1].expected] = rows[k + 1].found, r.found
    moved_e = [r.expected for r in rows if r.op == "moved" and r.expected is not None]
    moved_f = [r.found for r in rows if r.op == "moved" and r.found is not None]
    for e in moved_e:
        f = next(f for f in moved_f if exp[e].same_layer(fnd[f]))
        moved_f.remove(f)
        pairs[e] = f
    return pairs


def align_specs(expected: Sequence[LayerSpec], found: Sequence[LayerSpec]) -> Alignment:
    """Optimal alignment of two spec lists: unit cost per missing, extra, changed or
    swapped layer; layers of different kinds are never paired as "changed"."""
    rows = _backtrack(expected, found, _distance_table(expected, found))
    rows = _pair_replacements(_pair_moves(rows, expected, found))
    return Alignment(tuple(rows), _pairs(rows, expected, found))


# ------------------------------------------------------------------------- problems

@dataclass(frozen=True)
class Problem:
    row: int
    diagnosis: str
    text: str   # the lead: what is wrong and why it matters
    short: str  # one clause, for the "Also:" list
    hint: str


_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
_ACTIVATIONS = frozenset({"ReLU", "Sigmoid", "Softmax", "Tanh", "Activation", "LeakyReLU", "ELU", "PReLU"})
_WHY_BN_FIRST = ("BatchNormalization must follow Conv2D directly: it normalizes the convolution's output "
                 "before the nonlinearity cuts off its negative half.")
_WHY_ORDER = "The order of layers decides what each layer receives, so the model computes something else."
_HINT_BN = "put BatchNormalization directly after each Conv2D and the activation after it: Conv2D -> BatchNormalization -> ReLU."


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _which(specs: Sequence[LayerSpec], i: int) -> str:
    """"Conv2D", or "the second Conv2D" when the model has several."""
    same = [k for k, s in enumerate(specs) if s.kind == specs[i].kind]
    if len(same) == 1:
        return specs[i].kind
    n = same.index(i)
    return f"the {_ORDINALS[n]} {specs[i].kind}" if n < len(_ORDINALS) else f"{specs[i].kind} number {n + 1}"


def _short_label(spec: LayerSpec) -> str:
    return spec.kind if spec.kind == "BatchNormalization" and spec.param("axis") == "channels" else spec.label()


def _who(spec: LayerSpec) -> str:
    if spec.name.endswith("/activation"):
        return f"the activation='{spec.kind.lower()}' argument of layer {spec.name[:-len('/activation')]!r}"
    return f"{spec.kind} {spec.name!r}"


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class _Context:
    exp: LayerGraph
    fnd: LayerGraph
    alignment: Alignment

    @property
    def e(self) -> list[LayerSpec]:
        return self.exp.specs

    @property
    def f(self) -> list[LayerSpec]:
        return self.fnd.specs


def _neighbours(ctx: _Context, start: int, stop: int) -> tuple[LayerSpec | None, LayerSpec | None]:
    """The student's own layers around a gap: sentences say where to add or remove a
    layer in terms of the model the student has in front of them."""
    rows = ctx.alignment.rows
    before = next((ctx.f[r.found] for r in reversed(rows[:start]) if r.found is not None), None)
    after = next((ctx.f[r.found] for r in rows[stop + 1:] if r.found is not None), None)
    return before, after


def _purpose(spec: LayerSpec) -> str:
    act, units = spec.param("activation"), spec.param("units")
    if spec.kind == "Dense" and act == "sigmoid" and units == 1:
        return ": it turns the features into one probability per image"
    if spec.kind == "Dense" and act == "softmax":
        return f": it turns the features into a probability for each of the {units} classes"
    return ""


def _missing_name(specs: Sequence[LayerSpec], e: int) -> str:
    """"BatchNormalization", or "the second BatchNormalization" when it is not the only one."""
    label, which = _short_label(specs[e]), _which(specs, e)
    if which == specs[e].kind:
        return label
    return which if label == specs[e].kind else f"{which} ({label})"


def _missing_problem(ctx: _Context, start: int, stop: int) -> Problem:
    indices = [r.expected for r in ctx.alignment.rows[start:stop + 1]]
    specs = [ctx.e[e] for e in indices]
    raw = _join([_missing_name(ctx.e, e) for e in indices])
    names = _cap(raw)
    verb = "is" if len(specs) == 1 else "are"
    before, after = _neighbours(ctx, start, stop)
    diagnosis = "bn_missing" if any(s.kind == "BatchNormalization" for s in specs) else "missing_layer"
    if after is None and before is not None:
        last = ctx.e[ctx.exp.outputs[0]] if ctx.exp.outputs else specs[-1]
        text = (f"{names} {verb} missing at the end, after {before.kind}. "
                f"The model must end with {last.label()}{_purpose(last)}.")
        return Problem(start, diagnosis, text, f"{raw} {verb} missing at the end", f"add {raw} at the end.")
    where = (f"between {before.kind} and {after.kind}" if before and after
             else f"at the start, before {after.kind}" if after else "")
    why = (" Without it the convolution's outputs are not normalized, so training is slower and less "
           "stable and the outputs differ from the specification." if diagnosis == "bn_missing"
           else " Every layer of the specification changes what the model computes.")
    return Problem(start, diagnosis, f"{names} {verb} missing {where}.{why}", f"{raw} {verb} missing {where}",
                   _HINT_BN if diagnosis == "bn_missing" else f"add {names} {where}.")


def _extra_problem(ctx: _Context, start: int, stop: int) -> Problem:
    specs = [ctx.f[r.found] for r in ctx.alignment.rows[start:stop + 1]]
    names = _join([s.label() for s in specs])
    before, after = _neighbours(ctx, start, stop)
    where = f"after {before.kind}" if before else f"at the start, before {after.kind}" if after else ""
    head = f"There is an extra layer {names}" if len(specs) == 1 else f"There are extra layers {names}"
    why = " Every extra layer changes what the model computes, so its outputs cannot match the specification."
    return Problem(start, "extra_layer", f"{head} {where}.{why}", f"{head[0].lower()}{head[1:]} {where}",
                   f"remove {names}.")


def _replaced_problem(ctx: _Context, k: int) -> Problem:
    row = ctx.alignment.rows[k]
    e, f = ctx.e[row.expected], ctx.f[row.found]
    text = f"Found {f.label()} where {e.label()} was expected."
    why = "A different kind of layer computes something else, so the outputs cannot match the specification."
    return Problem(k, "wrong_layer", f"{text} {why}", text[:-1], f"use {e.label()} there.")


_PARAM_WHY = {
    "filters": "The number of filters is the number of feature maps the layer produces; every later shape depends on it.",
    "kernel_size": "The kernel size sets how large a patch each filter looks at, and the output's size.",
    "strides": "The stride sets how far the window moves, and so the output's height and width.",
    "padding": "Padding decides whether the output keeps the input's height and width ('same') or shrinks ('valid').",
    "pool_size": "The pool size sets how much each pooling step shrinks the feature maps.",
    "units": "The number of units is the size of the layer's output.",
    "activation": ("The activation decides what the outputs mean: sigmoid gives a probability in [0, 1], "
                   "softmax probabilities that sum to 1."),
    "rate": "The dropout rate is the share of units dropped during training.",
}


# Settings recorded only when they differ from Keras' default; absent means this.
_DEFAULTS = {"use_bias": True, "center": True, "scale": True, "dilation_rate": 1, "groups": 1,
             "depth_multiplier": 1, "negative_slope": 0.0, "threshold": 0.0, "max_value": None, "axis": -1}


def _setting(spec: LayerSpec, key: str) -> object:
    return spec.param(key, _DEFAULTS.get(key))


def _phrase(kind: str, key: str, value: object) -> tuple[str, str]:
    """(full phrase, short value) for one setting: ("16 filters", "16")."""
    if key == "use_bias":
        return ("a bias", "a bias") if value else ("no bias (use_bias=False)", "no bias")
    if value is None:
        return f"no {key}", f"no {key}"
    if key == "filters":
        return f"{value} filters", str(value)
    if key == "kernel_size":
        return f"a {_dims(value)} kernel", _dims(value)
    if key == "pool_size":
        return f"a {_dims(value)} pool", _dims(value)
    if key == "strides":
        return f"stride {_stride(value)}", _stride(value)
    if key == "padding" and kind.startswith("ZeroPadding"):
        return f"padding {_fmt_padding(value)}", _fmt_padding(value)
    if key == "padding":
        return f"padding '{value}'", f"'{value}'"
    if key == "units":
        return f"{value} units", str(value)
    if key == "activation":
        return ("no activation (linear)" if value == "linear" else f"activation {value}"), str(value)
    if key == "rate":
        return f"rate {_fmt(value)}", _fmt(value)
    return f"{key}={_fmt(value)}", f"{key}={_fmt(value)}"


def _bn_axis_problem(ctx: _Context, k: int) -> Problem:
    row = ctx.alignment.rows[k]
    node = ctx.fnd.nodes[row.found]
    axis, shape = node.spec.param("axis"), node.input_shape
    rank = len(shape) if shape else None
    words = {0: "the batch", 1: "the image rows", 2: "the image columns"} if rank == 4 else {0: "the batch"}
    word = f" ({words[axis]})" if isinstance(axis, int) and axis in words else ""
    label = f"axes {_fmt(axis)}" if isinstance(axis, tuple) else f"axis {axis}"
    channel_axis = f"-1 or {rank - 1}" if rank else "-1"
    maps = f"each of the {shape[-1]} feature maps" if shape and shape[-1] else "each feature map"
    who = _cap(_which(ctx.f, row.found))
    text = f"{who} normalizes {label}{word}, not the channel axis ({channel_axis}): it must normalize {maps}."
    return Problem(k, "bn_wrong_axis", text, f"{who} normalizes {label}, not the channel axis",
                   f"use BatchNormalization(axis={rank - 1 if rank else -1}) (or the default axis=-1).")


def _changed_problem(ctx: _Context, k: int) -> Problem:
    row = ctx.alignment.rows[k]
    e, f = ctx.e[row.expected], ctx.f[row.found]
    if e.kind == "BatchNormalization" and e.param("axis") == "channels" and f.param("axis") != "channels":
        return _bn_axis_problem(ctx, k)
    keys = [key for key, _ in e.params + tuple(p for p in f.params if p[0] not in dict(e.params))]
    diffs = [key for key in dict.fromkeys(keys) if _setting(e, key) != _setting(f, key)]
    who = _cap(_which(ctx.f, row.found))
    found_phrases = [_phrase(f.kind, key, _setting(f, key))[0] for key in diffs]
    if len(diffs) == 1:
        wanted = _phrase(e.kind, diffs[0], _setting(e, diffs[0]))[1]
    else:
        wanted = _join([_phrase(e.kind, key, _setting(e, key))[0] for key in diffs])
    text = f"{who} has {_join(found_phrases)}; expected {wanted}."
    why = _PARAM_WHY.get(diffs[0], "Each layer setting changes what the model computes.")
    if f.kind.startswith("ZeroPadding"):
        why = "Zero padding sets how large the image is when the convolution sees it, and so every later shape."
    return Problem(k, f"wrong_params:{e.kind}", f"{text} {why}", text[:-1], f"make that layer {e.label()}.")


def _order_diagnosis(ctx: _Context, e: int) -> str:
    """How a BatchNormalization ended up out of place, from where the layers that
    should surround it are in the student's model."""
    spec, pairs = ctx.e[e], ctx.alignment.pairs
    if spec.kind != "BatchNormalization" or e not in pairs:
        return "wrong_order"
    here = pairs[e]
    convs = [pairs[s] for s in spec.inputs if _CONV.match(ctx.e[s].kind) and s in pairs]
    if any(here < c for c in convs):
        return "bn_before_conv"
    acts = [pairs[c] for c in ctx.exp.consumers(e) if ctx.e[c].kind in _ACTIVATIONS and c in pairs]
    return "relu_before_bn" if any(a < here for a in acts) else "wrong_order"


def _activation_before(ctx: _Context, e: int) -> str:
    """The activation the student put before BatchNormalization `e`, saying so when it is
    a Conv's own `activation=` argument (no separate layer to look for)."""
    c = next(c for c in ctx.exp.consumers(e) if ctx.e[c].kind in _ACTIVATIONS)
    found = ctx.f[ctx.alignment.pairs[c]] if c in ctx.alignment.pairs else None
    if found is not None and found.name.endswith("/activation"):
        return f"{found.kind} ({_who(found)})"
    return ctx.e[c].kind


def _order_problem(ctx: _Context, k: int, e: int) -> Problem:
    diagnosis = _order_diagnosis(ctx, e)
    spec = ctx.e[e]
    if diagnosis == "bn_before_conv":
        text = (f"BatchNormalization comes before {ctx.e[spec.inputs[0]].kind}. BatchNormalization must follow "
                "Conv2D directly: it normalizes the feature maps the convolution produces, not its input.")
        return Problem(k, diagnosis, text, f"BatchNormalization comes before {ctx.e[spec.inputs[0]].kind}", _HINT_BN)
    if diagnosis == "relu_before_bn":
        act = _activation_before(ctx, e)
        return Problem(k, diagnosis, f"{act} comes before BatchNormalization; {_WHY_BN_FIRST}",
                       f"{act} comes before BatchNormalization", _HINT_BN)
    found_at = ctx.alignment.pairs.get(e)
    prev = ctx.f[found_at - 1].kind if found_at else None
    where = f"comes after {prev}" if prev else "comes first"
    expected_prev = ctx.e[spec.inputs[0]].kind if spec.inputs else None
    wanted = f"expected right after {expected_prev}" if expected_prev else "expected first"
    text = f"{_cap(_which(ctx.e, e))} {where}; {wanted}."
    return Problem(k, "wrong_order", f"{text} {_WHY_ORDER}", text[:-1], "reorder the layers as in the expected column.")


def _runs(rows: Sequence[Row], op: str) -> list[tuple[int, int]]:
    runs, k = [], 0
    while k < len(rows):
        if rows[k].op != op:
            k += 1
            continue
        start = k
        while k + 1 < len(rows) and rows[k + 1].op == op:
            k += 1
        runs.append((start, k))
        k += 1
    return runs


def _alignment_problems(ctx: _Context) -> list[Problem]:
    rows, out, done = ctx.alignment.rows, [], set()
    for start, stop in _runs(rows, "missing"):
        out.append(_missing_problem(ctx, start, stop))
    for start, stop in _runs(rows, "extra"):
        out.append(_extra_problem(ctx, start, stop))
    for k, row in enumerate(rows):
        if row.op == "changed":
            out.append(_changed_problem(ctx, k))
        elif row.op == "replaced":
            out.append(_replaced_problem(ctx, k))
        elif row.op in ("swapped", "moved") and row.expected is not None and row.expected not in done:
            group = _order_group(ctx, k)
            done.update(group)
            e = next((g for g in group if ctx.e[g].kind == "BatchNormalization"), group[0])
            out.append(_order_problem(ctx, min(k, ctx.alignment.row_of_found(ctx.alignment.pairs[e])), e))
    return sorted(out, key=lambda p: p.row)


def _order_group(ctx: _Context, k: int) -> list[int]:
    """The expected layers of one order problem: both layers of a swap, or the moved one."""
    rows = ctx.alignment.rows
    if rows[k].op == "swapped" and k + 1 < len(rows) and rows[k + 1].op == "swapped":
        return [rows[k].expected, rows[k + 1].expected]
    return [rows[k].expected]


def _disconnected_problem(ctx: _Context, exercise: str) -> Problem | None:
    names = ctx.fnd.disconnected
    if not names:
        return None
    shown = [repr(n) for n in names[:6]] + ([f"{len(names) - 6} more"] if len(names) > 6 else [])
    last = ctx.f[ctx.fnd.outputs[0]] if ctx.fnd.outputs else None
    model = f"the model {exercise} returns" if exercise else "the model"
    ends = f": {model} ends at {_who(last)}" if last else ""
    layer_word = "Layer" if len(names) == 1 else "Layers"
    verb = "was" if len(names) == 1 else "were"
    text = (f"{layer_word} {_join(shown)} {verb} created but never connected to the output{ends}. "
            "Keras keeps only the layers between the inputs and the outputs given to Model(), "
            "so these layers are not part of the model.")
    row = next((k for k, r in enumerate(ctx.alignment.rows) if r.op != "equal"), 0)
    return Problem(row, "disconnected_layers", text, f"{len(names)} layers are never connected to the output",
                   "pass the result of the last layer as outputs: Model(inputs=..., outputs=outputs).")


def _fork_description(g: LayerGraph, who=_who) -> tuple[int | None, str]:
    """(node, sentence) for the first place where a graph stops being a chain. `who`
    names a layer: by its name in the student's model, by its kind in the reference's
    (whose names mean nothing to the student)."""
    readers = g.input_readers()
    if len(readers) > 1:
        return readers[-1], f"the input feeds {len(readers)} layers ({_join([who(g.specs[r]) for r in readers])})"
    for i, spec in enumerate(g.specs):
        if g.fan_in(i) > 1:
            sources = [who(g.specs[s]) for s in spec.inputs] + ["the input"] * g.nodes[i].reads_input
            return i, f"{who(spec)} merges {g.fan_in(i)} paths (from {_join(sources)})"
        if g.fan_out(i) > 1:
            users = [who(g.specs[c]) for c in g.consumers(i)] + ["the output"] * g.outputs.count(i)
            return i, f"{who(spec)} feeds {g.fan_out(i)} layers ({_join(users)})"
    if len(g.outputs) != 1:
        return None, f"the model has {len(g.outputs)} outputs"
    return None, "the model is not a single chain"


def _branching_problem(ctx: _Context) -> Problem | None:
    if ctx.exp.is_chain() == ctx.fnd.is_chain():
        return None
    hint = "build a single chain: pass each layer's output only to the next layer, x = Layer(...)(x)."
    why = " A branch changes which tensor each layer receives, so the model computes something else."
    if ctx.exp.is_chain():
        node, what = _fork_description(ctx.fnd)
        row = ctx.alignment.row_of_found(node) if node is not None else 0
        text = f"{_cap(what)}, but in the expected model each layer feeds only the next one."
        return Problem(row, "wrong_branching", text + why, text[:-1], hint)
    node, what = _fork_description(ctx.exp, who=lambda s: s.kind)
    row = ctx.alignment.row_of_expected(node) if node is not None else 0
    text = f"Your model is a single chain, but in the expected model {what}."
    return Problem(row, "wrong_branching", text + why, text[:-1], "connect the layers as in the specification.")


def _edge_problem(ctx: _Context) -> Problem | None:
    """With every layer matched, each must also read from the matching layers."""
    pairs = ctx.alignment.pairs
    for e, spec in enumerate(ctx.e):
        f = pairs[e]
        wanted = [pairs[s] for s in spec.inputs] + [-1] * ctx.exp.nodes[e].reads_input
        got = list(ctx.f[f].inputs) + [-1] * ctx.fnd.nodes[f].reads_input
        if spec.kind in _COMMUTATIVE:
            wanted, got = sorted(wanted), sorted(got)
        if wanted != got:
            name = lambda i: "the input" if i < 0 else _who(ctx.f[i])  # noqa: E731
            text = (f"{_cap(_who(ctx.f[f]))} takes its input from {_join([name(i) for i in got] or ['nothing'])}; "
                    f"expected from {_join([name(i) for i in wanted] or ['nothing'])}.")
            why = " Which layers feed a layer decides what it computes, so the outputs differ."
            return Problem(ctx.alignment.row_of_found(f), "wrong_branching", text + why, text[:-1],
                           "connect the layers as in the specification.")
    return None


def _problems(ctx: _Context, exercise: str) -> list[Problem]:
    """Structural problems lead (they explain the rows that follow them); layers
    missing under a disconnected lead are that same problem, so not repeated."""
    disconnected = _disconnected_problem(ctx, exercise)
    lead = disconnected or _branching_problem(ctx)
    rest = _alignment_problems(ctx)
    if disconnected:
        rest = [p for p in rest if p.diagnosis not in ("missing_layer", "bn_missing")]
    if lead is None and not rest:
        edge = _edge_problem(ctx)
        return [edge] if edge else []
    return ([lead] if lead else []) + rest


def _table(ctx: _Context, marked: int | None) -> Table:
    rows = tuple((str(k + 1), ctx.e[r.expected].label() if r.expected is not None else MISSING,
                  ctx.f[r.found].label() if r.found is not None else MISSING)
                 for k, r in enumerate(ctx.alignment.rows))
    return Table(headers=("#", "expected", "found"), rows=rows, marked=marked)


def _message(problems: Sequence[Problem]) -> str:
    lead, others = problems[0], problems[1:]
    if not others:
        return lead.text
    also = "; ".join(p.short for p in others[:2])
    more = f"; and {len(others) - 2} more" if len(others) > 2 else ""
    return f"{lead.text} Also: {also}{more}."


def expect_architecture(expected_model: Any, found_model: Any, *, exercise: str) -> None:
    """Structural problems (disconnected layers, branching) lead because they explain
    the rows under them; otherwise the first aligned difference in model order leads
    and up to two others follow, so a student fixes the root cause first."""
    exp, fnd = layer_graph(expected_model), layer_graph(found_model)
    ctx = _Context(exp, fnd, align_specs(exp.specs, fnd.specs))
    problems = _problems(ctx, exercise)
    if problems:
        lead = problems[0]
        raise CheckFailed(_message(problems), hint=lead.hint, table=_table(ctx, lead.row), diagnosis=lead.diagnosis)


# ------------------------------------------------------------------ BN after Conv

def _bn_violation(g: LayerGraph, i: int) -> tuple[str, str] | None:
    spec = g.specs[i]
    who = f"BatchNormalization {spec.name!r} (layer {i + 1})"
    if len(spec.inputs) != 1 or g.nodes[i].reads_input:
        source = "the model input" if g.nodes[i].reads_input and not spec.inputs else "several layers"
        users = [g.specs[c].kind for c in g.consumers(i)]
        diagnosis = "bn_before_conv" if any(_CONV.match(u) for u in users) else "bn_not_after_conv"
        return diagnosis, f"{who} takes its input from {source}, not from a Conv2D"
    source = g.specs[spec.inputs[0]]
    if not _CONV.match(source.kind):
        diagnosis = "relu_before_bn" if source.kind in _ACTIVATIONS else "bn_not_after_conv"
        return diagnosis, f"{who} takes its input from {_who(source)}, not from a Conv2D"
    if spec.param("axis") != "channels":
        return "bn_wrong_axis", f"{who} normalizes axis {_fmt(spec.param('axis'))}, not the channel axis"
    return None


def expect_bn_after_conv(model: Any, *, minimum: int = 1) -> None:
    """Every BatchNormalization must read a Conv2D's output directly and normalize its
    channels. `minimum` BatchNormalization layers must exist, so a model without any
    does not pass by having nothing to check (use minimum=0 for an optional BN)."""
    g = layer_graph(model)
    bns = [i for i, s in enumerate(g.specs) if s.kind == "BatchNormalization"]
    if len(bns) < minimum:
        raise CheckFailed(f"The model has {len(bns)} BatchNormalization layers; expected at least {minimum}, "
                          "one directly after each Conv2D.", hint=_HINT_BN, diagnosis="bn_missing")
    violations = [(i, v) for i in bns if (v := _bn_violation(g, i))]
    if not violations:
        return
    first, (diagnosis, _) = violations[0]
    text = "; ".join(v[1] for _, v in violations) + ". " + _WHY_BN_FIRST
    rows = tuple((str(k + 1), s.label(), _join([_who(g.specs[j]) for j in s.inputs]) if s.inputs else "the input")
                 for k, s in enumerate(g.specs))
    raise CheckFailed(text, hint=_HINT_BN, diagnosis=diagnosis,
                      table=Table(headers=("#", "layer", "takes its input from"), rows=rows, marked=first))


__all__ = ["LayerSpec", "LayerGraph", "GraphNode", "Row", "Alignment", "layer_specs", "layer_graph",
           "align_specs", "expect_architecture", "expect_bn_after_conv"]
