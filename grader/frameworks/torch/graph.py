"""A PyTorch module as the framework-neutral `LayerGraph` every check reads.

The checks compare layer kinds and settings in one canonical form (`grader.checks.specs`),
so a torch operation is mapped to the kind that computes the same: `nn.Conv2d` to a
convolution, `nn.BatchNorm2d` to batch normalization over the channel axis (axis 1 of
NCHW tensors is the channel axis, so it reads "channels" as Keras' axis -1 does),
`nn.ReLU`/`F.relu`/`x.relu()` to ReLU, pooling, `nn.Linear` to dense, `view(N, -1)` and
`torch.flatten(x, 1)` to Flatten, `+`/`torch.add` and `torch.cat` to merges. Each spec
keeps how the student wrote it (`display`, e.g. `nn.BatchNorm2d(32)`), which is what the
feedback shows. BatchNorm keeps `num_features`, so a wrong one is its own difference.

Nodes that only move shapes around (`x.size(0)`, `x.shape`) are not layers; nodes that
change nothing (`contiguous`, `nn.Identity`) pass their input through.

The reference is a real module, traced here (instructor code); a student's module is a
`RebuiltModule`, whose graph came from the sandbox and was vetted by `rebuild`. A module
`torch.fx` could not trace fails here with a `CheckFailed` naming the reason and line.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.fx
import torch.nn as nn

from grader.checks import CheckFailed
from grader.checks.graph import GraphNode, LayerGraph, Location, _fold_activations, _foldable
from grader.checks.limits import MAX_CALLS, GraphTooLarge
from grader.checks.specs import FOLDABLE, LayerSpec
from grader.frameworks.torch.child.describe import function_names
from grader.frameworks.torch.rebuild import FUNCTIONS, RebuiltModule
from grader.frameworks.torch.shapes import channels_last, example_input_shape, node_shapes, recorded_input_shape
from grader.notebook.cellnames import split_label

_PASS_METHODS = frozenset({"contiguous", "clone", "detach", "float"})
_SHAPE_METHODS = frozenset({"size", "dim"})
_MEMO = "_grader_torch_layer_graph"
_TRACED = "_grader_torch_fx_graph"
_DERIVED = "_grader_torch_derived_input"


def _function_name(target: Any) -> str:
    """The table's name of a called function ("F.relu"), whichever side made the node."""
    for table in (_NAMES_REBUILT, _NAMES_LOCAL):
        name = table.get(id(target))
        if name:
            return name
    return getattr(target, "__name__", str(target))


_NAMES_REBUILT = {id(fn): name for name, fn in FUNCTIONS.items()}
_NAMES_LOCAL = {id(fn): name for fn, name in function_names().items()}


def untraceable_message(module: RebuiltModule) -> str:
    where = module.untraceable_where
    at = f" ({split_label(where[0])[0]}, line {where[1]}: `{where[2]}`)" if where else ""
    return (f"`{module.class_name}.forward` cannot be followed operation by operation{at}: "
            f"{module.untraceable}. The grader reads your model by tracing forward with a placeholder "
            "input, so forward must not branch on the values of tensors.")


def _fx_graph(module: nn.Module) -> tuple[torch.fx.Graph, nn.Module, dict]:
    if isinstance(module, RebuiltModule):
        if module.fx_graph is None:
            raise CheckFailed(untraceable_message(module),
                              hint="compute the same result without an `if` or loop that depends on a tensor's "
                                   "values (e.g. torch.where), or build the model from layers only.",
                              diagnosis="untraceable_forward")
        return module.fx_graph, module, module.node_locations
    # Traced once per module and set of submodules: a check asks for the graph about ten
    # times, and each trace of the reference took longer than building the graph from it.
    modules = tuple((path, id(sub)) for path, sub in module.named_modules())
    held = module.__dict__.get(_TRACED)
    if isinstance(held, tuple) and held[0] == modules:
        return held[1], module, {}
    try:
        graph = torch.fx.symbolic_trace(module).graph
        module.__dict__[_TRACED] = (modules, graph)
        return graph, module, {}
    except Exception as exc:  # noqa: BLE001 - the reference's own forward: the instructor's to fix
        raise CheckFailed(f"The reference model cannot be traced by torch.fx: {type(exc).__name__}: {exc}",
                          diagnosis="reference_untraceable") from None


def torch_layer_graph(module: nn.Module, *, cap: int = MAX_CALLS) -> LayerGraph:
    """The module's canonical graph, with each layer's input shape where one is known
    (`grader.frameworks.torch.shapes`); remembered on the module (the checks ask often)
    until the shape it is read at changes."""
    held = module.__dict__.get(_MEMO)
    graph, root, locations = _fx_graph(module)
    example = recorded_input_shape(module)
    if example is None:  # derived once per graph: a derivation may try several sizes
        derived = module.__dict__.get(_DERIVED)
        if not (isinstance(derived, tuple) and derived[0] == id(graph)):
            derived = (id(graph), example_input_shape(root, graph))
            module.__dict__[_DERIVED] = derived
        example = derived[1]
    key = (id(graph), cap, len(graph.nodes), example)
    if isinstance(held, tuple) and held[0] == key:
        return held[1]
    shapes = node_shapes(root, graph, example) if example is not None else None
    built = _build(graph, root, locations, cap, shapes or {})
    module.__dict__[_MEMO] = (key, built)
    return built


def _ints(value: Any, n: int = 2) -> tuple:
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) * n


def _conv_padding(padding: Any, kernel: tuple, stride: tuple, dilation: tuple) -> Any:
    """Keras' words where they mean the same: 0 is "valid"; (k-1)/2 at stride 1 is "same"."""
    if isinstance(padding, str):
        return padding
    pad = _ints(padding, len(kernel))
    if not any(pad):
        return "valid"
    if set(stride) == {1} and all(d * (k - 1) == 2 * p for k, p, d in zip(kernel, pad, dilation)):
        return "same"
    return tuple((p, p) for p in pad)


def _conv_spec(m: nn.Conv2d) -> tuple[str, tuple, str]:
    k, s, d = _ints(m.kernel_size), _ints(m.stride), _ints(m.dilation)
    params: list = [("filters", m.out_channels), ("kernel_size", k), ("strides", s),
                    ("padding", _conv_padding(m.padding, k, s, d))]
    if set(d) != {1}:
        params.append(("dilation_rate", d))
    if m.groups != 1:
        params.append(("groups", m.groups))
    if m.bias is None:
        params.append(("use_bias", False))
    if m.padding_mode != "zeros":  # the same as zeros where nothing is padded (decided at the graph's shapes)
        params.append(("padding_mode", str(m.padding_mode)))
    extra = [str(_short(m.kernel_size))]
    extra += [f"{name}={_short(getattr(m, name))}" for name, default in
              (("stride", 1), ("padding", 0), ("dilation", 1)) if _short(getattr(m, name)) != default]
    extra += [f"groups={m.groups}"] * (m.groups != 1) + ["bias=False"] * (m.bias is None)
    extra += [f"padding_mode='{m.padding_mode}'"] * (m.padding_mode != "zeros")
    return "Conv2D", tuple(params), f"nn.Conv2d({m.in_channels}, {m.out_channels}, {', '.join(extra)})"


def _short(value: Any) -> Any:
    """(7, 7) reads 7, as students write it; other values as they are."""
    if isinstance(value, (tuple, list)) and len(set(value)) == 1:
        return value[0]
    return tuple(value) if isinstance(value, list) else value


def _pool_params(kernel: Any, stride: Any, padding: Any, ceil_mode: bool = False) -> tuple:
    """ceil_mode only when set: on a map the window steps over evenly it changes nothing
    (decided at the graph's shapes, `grader.checks.equivalence`)."""
    k = _ints(kernel)
    s = _ints(stride) if stride not in (None, (), []) else k
    pad = _ints(padding)
    params = (("pool_size", k), ("strides", s), ("padding", "valid" if not any(pad) else tuple((p, p) for p in pad)))
    return params + ((("ceil_mode", True),) if ceil_mode else ())


def _pool_display(name: str, m: nn.Module) -> str:
    shown = f"nn.{name}({_short(m.kernel_size)}"
    shown += f", stride={_short(m.stride)}" if _short(m.stride) != _short(m.kernel_size) else ""
    return shown + (", ceil_mode=True" if m.ceil_mode else "") + ")"


def _module_spec(m: nn.Module) -> tuple[str, tuple, str] | None:
    """(kind, params, display) of an allow-listed layer; None for a pass-through."""
    name = type(m).__name__
    if isinstance(m, nn.Conv2d):
        return _conv_spec(m)
    if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
        params: tuple = (("axis", "channels"), ("num_features", m.num_features))
        params += (("center", False), ("scale", False)) if not m.affine else ()
        return "BatchNormalization", params, f"nn.{name}({m.num_features}" + (", affine=False)" if not m.affine else ")")
    if isinstance(m, nn.LeakyReLU):
        return "LeakyReLU", (("negative_slope", float(m.negative_slope)),), f"nn.LeakyReLU({m.negative_slope:g})"
    if isinstance(m, nn.ReLU):
        return "ReLU", (), "nn.ReLU()"
    if isinstance(m, nn.Sigmoid):
        return "Sigmoid", (), "nn.Sigmoid()"
    if isinstance(m, nn.Tanh):
        return "Tanh", (), "nn.Tanh()"
    if isinstance(m, nn.Softmax):
        return _softmax(m.dim, f"nn.Softmax(dim={m.dim})")
    if isinstance(m, nn.MaxPool2d):
        return "MaxPooling2D", _pool_params(m.kernel_size, m.stride, m.padding, m.ceil_mode), \
            _pool_display("MaxPool2d", m)
    if isinstance(m, nn.AvgPool2d):
        return "AveragePooling2D", _pool_params(m.kernel_size, m.stride, m.padding, m.ceil_mode), \
            _pool_display("AvgPool2d", m)
    if isinstance(m, nn.AdaptiveAvgPool2d):
        size = _ints(m.output_size)
        if size == (1, 1):
            return "GlobalAveragePooling2D", (("keepdims", True),), f"nn.AdaptiveAvgPool2d({_short(m.output_size)})"
        return "AdaptiveAveragePooling2D", (("output_size", size),), f"nn.AdaptiveAvgPool2d({size})"
    if isinstance(m, nn.ZeroPad2d):
        left, right, top, bottom = _ints(m.padding, 4)
        return "ZeroPadding2D", (("padding", ((top, bottom), (left, right))),), f"nn.ZeroPad2d({_short(m.padding)})"
    if isinstance(m, nn.Flatten):
        params = () if (m.start_dim, m.end_dim) == (1, -1) else (("start_dim", m.start_dim), ("end_dim", m.end_dim))
        return "Flatten", params, "nn.Flatten()" if not params else f"nn.Flatten({m.start_dim}, {m.end_dim})"
    if isinstance(m, nn.Linear):
        params = (("units", m.out_features), ("activation", "linear"))
        params += (("use_bias", False),) if m.bias is None else ()
        bias = ", bias=False" if m.bias is None else ""
        return "Dense", params, f"nn.Linear({m.in_features}, {m.out_features}{bias})"
    if isinstance(m, nn.Dropout2d):
        return "SpatialDropout2D", (("rate", float(m.p)),), f"nn.Dropout2d({m.p:g})"
    if isinstance(m, nn.Dropout):
        return "Dropout", (("rate", float(m.p)),), f"nn.Dropout({m.p:g})"
    if isinstance(m, nn.Identity):
        return None
    return name, (), f"nn.{name}()"


def _softmax(dim: Any, shown: str) -> tuple[str, tuple, str]:
    """Softmax over the class scores (dim 1 or -1 of an (N, classes) tensor) is plain Softmax."""
    return "Softmax", (() if dim in (None, 1, -1) else (("axis", dim),)), shown


def _arg(node: torch.fx.Node, i: int, key: str, default: Any = None) -> Any:
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(key, default)


def _function_spec(name: str, node: torch.fx.Node, root: nn.Module) -> tuple[str, tuple, str] | None | str:
    """(kind, params, display) of a functional operation; None to pass its input
    through; "shape" for an operation on sizes, not tensors."""
    short = name.split(".")[-1]
    written = f"{name}()" if node.op == "call_function" else f".{name}()"
    if short in ("relu",):
        return "ReLU", (), written
    if short == "leaky_relu":
        slope = float(_arg(node, 1, "negative_slope", 0.01))
        return "LeakyReLU", (("negative_slope", slope),), written
    if short in ("sigmoid", "tanh"):
        return short.capitalize(), (), written
    if short in ("softmax", "log_softmax"):
        dim = _arg(node, 1, "dim")
        kind = _softmax(dim, written)
        return (kind if short == "softmax" else ("LogSoftmax", kind[1], written))
    if short in ("max_pool2d", "avg_pool2d"):
        kernel = _arg(node, 1, "kernel_size")
        kind = "MaxPooling2D" if short.startswith("max") else "AveragePooling2D"
        return kind, _pool_params(kernel, _arg(node, 2, "stride"), _arg(node, 3, "padding", 0)), \
            f"{name}(kernel_size={_short(kernel)})"
    if short == "adaptive_avg_pool2d":
        size = _ints(_arg(node, 1, "output_size"))
        if size == (1, 1):
            return "GlobalAveragePooling2D", (("keepdims", True),), written
        return "AdaptiveAveragePooling2D", (("output_size", size),), written
    if short == "flatten":
        start = _arg(node, 1, "start_dim", 0 if node.op == "call_function" else 0)
        return "Flatten", (() if start == 1 else (("start_dim", start),)), f"{name}(start_dim={start})"
    if short in ("view", "reshape"):
        shape = node.args[1:] if len(node.args) > 2 else (node.args[1:2] or ())
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        shown = ", ".join("N" if isinstance(a, torch.fx.Node) else str(a) for a in shape)
        if len(shape) == 2:  # (N, -1), (-1, C*H*W), (x.size(0), C*H*W): one row per sample
            return "Flatten", (), f".{short}({shown})"
        return "Reshape", (("shape", tuple(a if isinstance(a, int) else -2 for a in shape)),), f".{short}({shown})"
    if short in ("dropout", "dropout2d"):
        p = float(_arg(node, 1, "p", 0.5))
        return ("Dropout" if short == "dropout" else "SpatialDropout2D"), (("rate", p),), f"{name}(p={p:g})"
    if short == "cat":
        return "Concatenate", (("axis", _arg(node, 1, "dim", 0)),), f"{name}(dim={_arg(node, 1, 'dim', 0)})"
    if short in ("add", "sub", "mul"):
        kind = {"add": "Add", "sub": "Subtract", "mul": "Multiply"}[short]
        return kind, (), "+" if name == "operator.add" else written
    if short in ("conv2d",):
        return "Conv2D", _functional_conv(node, _weight(node, root)), written
    if short in ("linear",):
        weight = _weight(node, root)
        units = (("units", int(weight.shape[0])),) if weight is not None and weight.dim() == 2 else ()
        return "Dense", units + (("activation", "linear"),), written
    if short in ("batch_norm",):
        return "BatchNormalization", (("axis", "channels"),), written
    return short.capitalize(), (), written


def _weight(node: torch.fx.Node, root: nn.Module) -> torch.Tensor | None:
    """The weight a functional conv2d / linear reads, when it is the module's own parameter
    (a `get_attr` node: a student's subclass of nn.Conv2d, or an nn.Parameter of theirs)."""
    weight = _arg(node, 1, "weight")
    if isinstance(weight, torch.fx.Node) and weight.op == "get_attr":
        try:
            return root.get_parameter(str(weight.target))
        except AttributeError:
            try:
                return root.get_buffer(str(weight.target))
            except AttributeError:
                return None
    return None


def _owner(node: torch.fx.Node, root: nn.Module) -> nn.Module | None:
    """The module holding the weight a functional conv2d / linear reads (its parameters
    are what the output checks copy); None for other functions."""
    weight = _arg(node, 1, "weight")
    if not (isinstance(weight, torch.fx.Node) and weight.op == "get_attr"):
        return None
    parent = str(weight.target).rpartition(".")[0]
    try:
        return root.get_submodule(parent) if parent else None
    except AttributeError:
        return None


def _functional_conv(node: torch.fx.Node, weight: torch.Tensor | None) -> tuple:
    """F.conv2d's settings; filters and kernel size only when its weight is a parameter
    of the module (weights passed in as arguments have no fixed shape here)."""
    stride = _ints(_arg(node, 3, "stride", 1))
    dilation = _ints(_arg(node, 5, "dilation", 1))
    padding = _arg(node, 4, "padding", 0)
    if weight is None or weight.dim() != 4:
        pad = padding if isinstance(padding, str) else ("valid" if not any(_ints(padding)) else _ints(padding))
        return (("strides", stride), ("padding", pad))
    kernel = (int(weight.shape[2]), int(weight.shape[3]))
    params: list = [("filters", int(weight.shape[0])), ("kernel_size", kernel), ("strides", stride),
                    ("padding", _conv_padding(padding, kernel, stride, dilation))]
    if set(dilation) != {1}:
        params.append(("dilation_rate", dilation))
    groups = _arg(node, 6, "groups", 1)
    if groups != 1:
        params.append(("groups", groups))
    return tuple(params)


def _build(graph: torch.fx.Graph, root: nn.Module, locations: dict, cap: int, tensor_shapes: dict) -> LayerGraph:
    where: dict[Any, int] = {}  # tensor-valued fx node -> node index, or -1 - k for the k-th input
    shapes: set = set()  # fx nodes holding sizes, not tensors
    nodes: list[GraphNode] = []
    outputs: list[int] = []
    called: set[str] = set()
    inputs = 0
    modules = dict(root.named_modules())
    module_locations = getattr(root, "module_locations", {}) if isinstance(root, RebuiltModule) else {}
    for node in graph.nodes:
        if node.op == "placeholder":
            where[node] = -1 - inputs
            inputs += 1
            continue
        if node.op == "get_attr":
            shapes.add(node)  # a parameter read directly: an operand, not a layer
            continue
        if node.op == "output":
            for value in _flat(node.args[0]):
                if value in where and where[value] >= 0:
                    outputs.append(where[value])
            continue
        tensors = [a for a in _flat((node.args, node.kwargs)) if isinstance(a, torch.fx.Node) and a in where]
        sources = [where[a] for a in tensors]
        if node.op == "call_module":
            called.add(str(node.target))
            module = modules.get(str(node.target))
            spec = _module_spec(module) if module is not None else ("Unknown", (), str(node.target))
            origin, layer, path = type(module).__name__, module, str(node.target)
        else:
            name = _function_name(node.target) if node.op == "call_function" else str(node.target)
            if (node.op == "call_method" and name in _SHAPE_METHODS) or name == "getattr" or not sources:
                shapes.add(node)
                continue
            if node.op == "call_method" and name in _PASS_METHODS:
                where[node] = sources[0]
                continue
            if name in ("operator.getitem",):
                spec = ("Slice", (), "[...]")
            else:
                try:
                    spec = _function_spec(name, node, root)
                except (TypeError, ValueError, IndexError, AttributeError, RuntimeError):
                    # arguments that are not what the function takes: a layer of its own, unlike any
                    spec = (name.split(".")[-1].capitalize(), (("arguments", "unreadable"),), f"{name}(...)")
            origin, layer, path = name, _owner(node, root), ""
        if spec is None:
            where[node] = sources[0]
            continue
        kind, params, shown = spec
        in_shapes = tuple(channels_last(tensor_shapes.get(a)) for a in tensors)
        if kind == "Concatenate" and in_shapes and in_shapes[0] is not None:
            params = _canonical_axis(params, len(in_shapes[0]))
        if len(nodes) >= cap:
            raise GraphTooLarge(f"The model has more than {cap} layers; the grader stops reading it there.",
                                diagnosis="graph_too_large")
        at = locations.get(node.name) or (module_locations.get(path) if path else None)
        location = Location(split_label(at[0])[0], at[1], at[2], split_label(at[0])[1]) if at else None
        nodes.append(GraphNode(
            LayerSpec(kind, params, path or node.name, tuple(s for s in sources if s >= 0), display=shown,
                      framework="torch"),
            layer, in_shapes[0] if in_shapes else None, sum(1 for s in sources if s < 0), origin,
            auto_named=not path or path.replace(".", "").isdigit(), location=location,
            sources=tuple(sources), input_shapes=in_shapes if None not in in_shapes else ()))
        where[node] = len(nodes) - 1
    nodes = _bias_before_batchnorm(nodes)
    nodes, folded = _fold(nodes, tuple(outputs))
    leaves = [p for p, m in root.named_modules() if p and not m._modules and p not in called
              and type(m).__name__ != "Module"]
    return LayerGraph(tuple(nodes), folded, tuple(leaves[:100]))


def _canonical_axis(params: tuple, rank: int) -> tuple:
    """`torch.cat`'s dim counted from the front, as the student reads it: dim=-3 and dim=1
    of an NCHW tensor are the same concatenation (`grader.checks.merge_order` knows dim 1
    is a torch tensor's channel axis)."""
    dim = dict(params).get("axis")
    if not isinstance(dim, int) or not -rank <= dim < rank:
        return params
    return tuple(("axis", dim % rank) if k == "axis" else (k, v) for k, v in params)


def _bias_before_batchnorm(nodes: list[GraphNode]) -> list[GraphNode]:
    """A convolution's bias is left out of its spec: before BatchNorm, which subtracts any
    per-channel constant, `bias=False` is an optimization, not another model, and a
    student who moved BatchNorm must hear about the move, not about the bias. Where a bias
    does change the result, the output checks (which copy the reference's bias, or zero
    one the reference lacks) find it; the label still shows what was written."""
    out = list(nodes)
    for i, node in enumerate(nodes):
        if node.spec.kind == "Conv2D":
            params = tuple(p for p in node.spec.params if p[0] != "use_bias")
            held = (("use_bias", node.layer.bias is not None),) if isinstance(node.layer, nn.Conv2d) else ()
            out[i] = replace(node, spec=replace(node.spec, params=params, set_aside=held))
    return out


def _flat(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat(v)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _flat(v)]
    return [value]


def _fold(nodes: list[GraphNode], outputs: tuple) -> tuple[list[GraphNode], tuple[int, ...]]:
    """`nn.Linear` then `nn.Sigmoid` reads as one dense layer with its activation, as the
    Keras graph folds them; the label keeps both, as written."""
    users: dict[int, list[int]] = {}
    for j, node in enumerate(nodes):
        for s in node.spec.inputs:
            users.setdefault(s, []).append(j)
    for d in range(len(nodes)):
        a = _foldable(nodes, outputs, d, users.get(d, []))
        if a is not None and nodes[a].spec.kind in FOLDABLE:
            spec = nodes[d].spec
            nodes[d] = replace(nodes[d], spec=replace(spec, display=f"{spec.display} + {nodes[a].spec.display}"))
    return _fold_activations(nodes, outputs)


__all__ = ["torch_layer_graph", "untraceable_message"]
