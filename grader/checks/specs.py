"""Canonical layer specs: one layer call as (kind, settings), so that equivalent
spellings compare equal and every spec prints a label a student recognizes.

Canonical specs make equivalent spellings equal (`MaxPool2D` / `MaxPooling2D`,
`padding=3` / `((3, 3), (3, 3))`, `Activation('relu')` / `ReLU()`, BatchNormalization
`axis=-1` / `axis=3`, ...), so a student is never failed for spelling, only for computing
something else.

Decisions:
- A Conv activation (`Conv2D(..., activation='relu')`) is split into its own "ReLU" spec
  right after the Conv2D: where BatchNormalization sits relative to the nonlinearity is
  what these assignments grade, and the split makes `Conv2D(activation='relu')` followed
  by BatchNormalization read as "ReLU comes before BatchNormalization", which it is.
- `use_bias=False`, dilation and groups are recorded only when not default; names,
  initializers, regularizers, dtype, momentum and epsilon are ignored (epsilon only
  shows in outputs, which the output checks compare). An assignment that grades an
  initializer asks for it (`expect_architecture(..., compare=("kernel_initializer",))`),
  read through `setting`, which makes `HeNormal()`, `'he_normal'` and `'HeNormal'` equal.
- An axis is resolved against the rank of the layer's input: `Concatenate()`,
  `Concatenate(axis=-1)` and `axis=3` on 4-D tensors are the same layer.
- What the settings only decide together with a shape (is 'same' padding any padding at
  all on this map?) is left to `grader.checks.equivalence`, which knows the shapes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_ALIASES = {
    "MaxPool1D": "MaxPooling1D", "MaxPool2D": "MaxPooling2D", "MaxPool3D": "MaxPooling3D",
    "AvgPool1D": "AveragePooling1D", "AvgPool2D": "AveragePooling2D",
    "AvgPool3D": "AveragePooling3D", "Convolution1D": "Conv1D", "Convolution2D": "Conv2D",
    "Convolution3D": "Conv3D", "BatchNormalizationV1": "BatchNormalization",
    "BatchNormalizationV2": "BatchNormalization", "GlobalAvgPool2D": "GlobalAveragePooling2D",
    "GlobalMaxPool2D": "GlobalMaxPooling2D",
}
_ACTIVATION_KINDS = {"relu": "ReLU", "sigmoid": "Sigmoid", "softmax": "Softmax", "tanh": "Tanh"}
FOLDABLE = frozenset({*_ACTIVATION_KINDS.values(), "Activation"})
CONV = re.compile(r"^(Conv\dD|Conv\dDTranspose|SeparableConv\dD|DepthwiseConv\dD)$")
POOL = re.compile(r"^(MaxPooling|AveragePooling)\dD$")
_DROPOUT = re.compile(r"^(Dropout|SpatialDropout\dD|GaussianDropout|AlphaDropout)$")
COMMUTATIVE = frozenset({"Add", "Multiply", "Average", "Maximum", "Minimum"})
ACTIVATIONS = frozenset({"ReLU", "Sigmoid", "Softmax", "Tanh", "Activation", "LeakyReLU", "ELU", "PReLU"})
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
    # How the student's framework writes this layer (`nn.BatchNorm2d(32)`), when that is not
    # Keras: set by that framework's adapter (grader.frameworks.torch.graph), shown as the label.
    display: str = field(default="", compare=False)
    # Whose names the feedback uses for this layer: "" for Keras, "torch" for PyTorch (set by
    # that framework's adapter), so a sentence says `nn.BatchNorm2d` to a PyTorch student.
    framework: str = field(default="", compare=False)
    # Settings the adapter read but left out of `params` because they change nothing here
    # (a convolution's bias right before BatchNorm): kept so a passing check can still
    # mention them (`grader.checks.architecture`'s teaching notes).
    set_aside: tuple[tuple[str, object], ...] = field(default=(), compare=False)

    def param(self, key: str, default: object = None) -> object:
        return dict(self.params).get(key, default)

    def noun(self) -> str:
        """The layer's class or function as the student wrote it, for sentences: "Conv2D",
        "nn.BatchNorm2d", "F.relu", "torch.cat"."""
        return written_noun(self.display, self.kind, self.framework)

    def same_layer(self, other: "LayerSpec") -> bool:
        """Same computation regardless of where in the graph it sits."""
        return self.kind == other.kind and self.params == other.params

    def label(self) -> str:
        if self.display:
            return self.display
        text, used = _describe(self)
        rest = [f"{k}={fmt(v)}" for k, v in self.params if k not in used]
        return f"{text} ({', '.join(rest)})" if rest else text


# ------------------------------------------------------------------ names per framework

# The canonical kinds are Keras' class names; PyTorch writes the same layers as these.
_TORCH_NOUNS = {
    "Conv1D": "nn.Conv1d", "Conv2D": "nn.Conv2d", "Conv3D": "nn.Conv3d", "Conv2DTranspose": "nn.ConvTranspose2d",
    "BatchNormalization": "nn.BatchNorm2d", "ReLU": "nn.ReLU", "LeakyReLU": "nn.LeakyReLU", "ELU": "nn.ELU",
    "PReLU": "nn.PReLU", "Sigmoid": "nn.Sigmoid", "Tanh": "nn.Tanh", "Softmax": "nn.Softmax",
    "LogSoftmax": "nn.LogSoftmax", "MaxPooling2D": "nn.MaxPool2d", "AveragePooling2D": "nn.AvgPool2d",
    "GlobalAveragePooling2D": "nn.AdaptiveAvgPool2d", "ZeroPadding2D": "nn.ZeroPad2d", "Flatten": "nn.Flatten",
    "Dense": "nn.Linear", "Dropout": "nn.Dropout", "SpatialDropout2D": "nn.Dropout2d", "Concatenate": "torch.cat",
    "Add": "the addition (+)", "Subtract": "the subtraction (-)", "Multiply": "the multiplication (*)",
    "Activation": "activation", "Reshape": ".view", "Slice": "indexing ([...])",
}
# Settings as PyTorch's constructors call them, where Keras' word differs.
_TORCH_SETTINGS = {"filters": "out_channels", "strides": "stride", "pool_size": "kernel_size",
                   "units": "out_features", "rate": "p", "axis": "dim", "use_bias": "bias"}


def kind_noun(kind: str, framework: str = "") -> str:
    """How a framework names a kind of layer in a sentence: `kind_noun("BatchNormalization",
    "torch")` is "nn.BatchNorm2d"; Keras' names are the canonical kinds themselves."""
    if framework == "torch":
        return _TORCH_NOUNS.get(kind, kind)
    return kind


def setting_word(key: str, framework: str = "") -> str:
    """A setting's argument name in the student's framework ("stride" in PyTorch)."""
    return _TORCH_SETTINGS.get(key, key) if framework == "torch" else key


def written_noun(display: str, kind: str, framework: str) -> str:
    """The class or function a display shows ("nn.BatchNorm2d(32)" -> "nn.BatchNorm2d",
    "F.relu()" -> "F.relu", ".relu()" -> "x.relu()"); the framework's name for the kind when
    the display names none (an operator, a folded pair)."""
    head = display.split(" + ", 1)[0].split("(", 1)[0].strip() if display else ""
    if head.startswith("."):
        return f"x{head}()"
    if re.fullmatch(r"[A-Za-z_][\w.]*", head) and "." in head:
        return head
    return kind_noun(kind, framework)


def framework_of(specs) -> str:
    """The framework a graph's layers were written in ("" for Keras): its first layer's."""
    for spec in specs:
        return spec.framework
    return ""


def _describe(spec: LayerSpec) -> tuple[str, set[str]]:
    """Each family's label lists every parameter it records, so two different specs
    never print the same (leftover parameters are appended by `label`)."""
    kind, p = spec.kind, dict(spec.params)
    if CONV.match(kind):
        return _describe_conv(kind, p)
    if POOL.match(kind):
        return _describe_pool(kind, p)
    if kind.startswith("ZeroPadding"):
        return f"{kind} {fmt_padding(p.get('padding'))}", {"padding"}
    if kind == "BatchNormalization":
        return _describe_bn(p)
    if kind == "Dense":
        act = p.get("activation", "linear")
        text = f"Dense {p.get('units')}" + ("" if act == "linear" else f", {act}")
        return text + (", no bias" if p.get("use_bias") is False else ""), {"units", "activation", "use_bias"}
    if _DROPOUT.match(kind):
        return f"{kind} {fmt(p.get('rate'))}", {"rate"}
    if kind == "Activation":
        return f"Activation {p.get('function')}", {"function"}
    return kind, set()


def _describe_conv(kind: str, p: dict) -> tuple[str, set[str]]:
    filters = f" {p['filters']}" if "filters" in p else ""
    text = f"{kind}{filters} @ {dims(p.get('kernel_size'))}, stride {stride_text(p.get('strides'))}"
    if p.get("padding", "valid") != "valid":
        text += f", {p['padding']}"
    if "dilation_rate" in p:
        text += f", dilation {stride_text(p['dilation_rate'])}"
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
    text = f"{kind} {dims(pool)}"
    if strides != pool or padding != "valid":
        text += f", stride {stride_text(strides)}" + ("" if padding == "valid" else f", {padding}")
    return text, {"pool_size", "strides", "padding"}


def _describe_bn(p: dict) -> tuple[str, set[str]]:
    axis = p.get("axis")
    if axis == "channels":
        text = "BatchNormalization (channels)"
    else:
        word = "axes" if isinstance(axis, tuple) else "axis"
        text = f"BatchNormalization ({word} {fmt(axis)} — not the channel axis)"
    text += "".join(f", {k}={v}" for k in ("center", "scale") if (v := p.get(k)) is not None)
    return text, {"axis", "center", "scale"}


def fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(fmt(v) for v in value) + ")"
    return str(value)


def dims(value: object) -> str:
    return "x".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def stride_text(value: object) -> str:
    if isinstance(value, tuple) and len(set(value)) == 1:
        return str(value[0])
    return dims(value)


def fmt_padding(value: object) -> str:
    """`((3, 3), (3, 3))` reads as "(3, 3)", the form the course writes."""
    if isinstance(value, tuple) and all(isinstance(v, tuple) and len(set(v)) == 1 for v in value):
        return fmt(tuple(v[0] for v in value))
    return fmt(value)


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
    if cfg.get("output_padding") is not None:  # Conv2DTranspose only
        params.append(("output_padding", _ntuple(cfg["output_padding"], n)))
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


def canonical(layer: Any, rank: int | None) -> list[tuple[str, tuple, str]]:
    """(kind, params, name) for one layer call: one entry, or two when a Conv carries
    its own activation (split out, see the module's decisions)."""
    raw = type(layer).__name__
    kind = _ALIASES.get(raw, raw)
    cfg = layer.get_config()
    name = str(getattr(layer, "name", raw))
    if CONV.match(kind):
        act = _activation_name(cfg.get("activation"))
        conv = (kind, _params_conv(kind, cfg), name)
        return [conv] if act == "linear" else [conv, (*_activation_spec(act), f"{name}/activation")]
    if kind == "Activation":
        return [(*_activation_spec(_activation_name(cfg.get("activation"))), name)]
    return [(kind, _params_for(kind, cfg, rank), name)]


def _params_for(kind: str, cfg: dict, rank: int | None) -> tuple:
    if POOL.match(kind):
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
        axis = _resolve_axis(_plain(cfg.get("axis", -1)), rank)
        last = (-1, (-1,)) if rank is None else (-1, (-1,), rank - 1, (rank - 1,))
        return () if axis in last else (("axis", axis),)
    if kind == "Flatten":
        return ()
    if kind in _AXIS_KINDS:
        return _params_axis(cfg, rank)
    return _params_generic(cfg)


# Layers whose `axis` counts from the end when negative (Keras' default is -1).
_AXIS_KINDS = frozenset({"Concatenate", "LayerNormalization", "GroupNormalization"})


def _params_axis(cfg: dict, rank: int | None) -> tuple:
    """The generic settings, `axis` resolved to a non-negative number when the rank is
    known: -1 and 3 are the same axis of a 4-D tensor, and "the last axis" reads as such."""
    params = []
    for key, value in _params_generic(cfg):
        if key == "axis":
            value = _resolve_axis(value, rank)
        params.append((key, value))
    return tuple(params)


def _resolve_axis(axis: object, rank: int | None) -> object:
    if rank is None:
        return axis
    if isinstance(axis, int):
        return axis % rank
    if isinstance(axis, tuple) and all(isinstance(a, int) for a in axis):
        return tuple(sorted(a % rank for a in axis))
    return axis


# ------------------------------------------------------------------ extra settings

# The initializers Keras names that are variance scaling with fixed arguments: an
# object, its class name or its snake_case name all mean the same initializer.
_INITIALIZER_NAMES = {
    "HeNormal": "he_normal", "HeUniform": "he_uniform", "GlorotNormal": "glorot_normal",
    "GlorotUniform": "glorot_uniform", "LecunNormal": "lecun_normal", "LecunUniform": "lecun_uniform",
    "RandomNormal": "random_normal", "RandomUniform": "random_uniform", "TruncatedNormal": "truncated_normal",
    "Zeros": "zeros", "Ones": "ones", "Orthogonal": "orthogonal", "Constant": "constant",
    "Identity": "identity", "VarianceScaling": "variance_scaling",
}
_SNAKE_ALIASES = {"normal": "random_normal", "uniform": "random_uniform", "zero": "zeros", "one": "ones"}
# Arguments that never change which distribution an initializer draws from.
_INITIALIZER_NOISE = frozenset({"seed", "input_axes", "output_axes", "dtype"})


def _snake_name(name: str) -> str:
    if name in _INITIALIZER_NAMES:
        return _INITIALIZER_NAMES[name]
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return _SNAKE_ALIASES.get(snake, snake)


def setting(layer: Any, key: str) -> object:
    """One setting of a layer as a comparable value, for the settings canonical specs
    leave out (initializers, regularizers, constraints, momentum, ...): an initializer as
    its snake_case name, with its arguments when they are not the defaults
    (`('he_normal',)`, `('random_normal', (('stddev', 0.5),))`); anything else as plain
    hashable Python. None when the layer has no such setting."""
    try:
        cfg = layer.get_config()
    except Exception:  # noqa: BLE001 - a layer without a config has no settings to compare
        return None
    if key not in cfg:
        return None
    value = cfg[key]
    if isinstance(value, str):
        return (_snake_name(value),)
    if isinstance(value, dict) and isinstance(value.get("class_name"), str):
        inner = value.get("config") if isinstance(value.get("config"), dict) else {}
        args = tuple(sorted((str(k), _plain(v)) for k, v in inner.items()
                            if k not in _INITIALIZER_NOISE and v is not None))
        name = _snake_name(value["class_name"])
        return (name, args) if args else (name,)
    return _plain(value)


def setting_text(value: object) -> str:
    """How `setting`'s value reads in a sentence: 'he_normal', 'random_normal(stddev=0.5)'."""
    if isinstance(value, tuple) and value and isinstance(value[0], str) and len(value) <= 2:
        args = value[1] if len(value) == 2 else ()
        if all(isinstance(a, tuple) and len(a) == 2 for a in args):
            inner = ", ".join(f"{k}={fmt(v)}" for k, v in args)
            return f"'{value[0]}'" + (f" ({inner})" if inner else "")
    return "none" if value is None else fmt(value)
