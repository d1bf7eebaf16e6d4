"""A PyTorch module rebuilt in the grading process from the data the sandbox sent back.

The child described the student's module (`describe`): a module tree, a `torch.fx` graph,
a state dict of arrays. Everything in it is a claim by the student, so it is vetted
before anything is built: module classes, functions and methods come from allow-lists;
every constructor argument has its type and range checked; the parameters the modules
would allocate are counted from those arguments before any is allocated; the state
dict must hold exactly the keys and shapes of the rebuilt modules. Anything else is
the student's `ModelRejected`, with a message naming what was refused.

No code is generated or executed: the rebuilt module runs its graph with
`torch.fx.Interpreter`, which calls the allow-listed modules and functions node by
node. Weights are copied in with `torch.from_numpy`; `torch.load` is never used.
"""
from __future__ import annotations

import inspect
import math
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from grader.frameworks.errors import ModelRejected
from grader.frameworks.torch.child.describe import F_FUNCTIONS, OPERATOR_FUNCTIONS, TORCH_FUNCTIONS
from grader.frameworks.torch.child.payload import TorchModulePayload

MAX_MODULES = 2000
MAX_NODES = 5000
MAX_PARAMS = 50_000_000  # numbers the rebuilt modules may hold (200 MB of float32)
MAX_CHANNELS = 1 << 16
MAX_KERNEL = 256
MAX_FEATURES = 1 << 24
_PATH = re.compile(r"[A-Za-z_0-9]{1,100}(\.[A-Za-z_0-9]{1,100}){0,30}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]{0,200}")


# ------------------------------------------------------------------ allow-lists

def _functions() -> dict[str, Callable]:
    table: dict[str, Callable] = {}
    for name in TORCH_FUNCTIONS:
        fn = getattr(torch, name, None)
        if fn is not None:
            table[f"torch.{name}"] = fn
    for name in F_FUNCTIONS:
        fn = getattr(F, name, None)
        if fn is not None:
            table[f"F.{name}"] = fn
    for name in OPERATOR_FUNCTIONS:
        table[f"operator.{name}"] = getattr(operator, name)
    table["getattr"] = _tensor_attribute
    return table


_ATTRIBUTES = frozenset({"shape", "ndim", "T"})


def _tensor_attribute(obj: Any, name: str) -> Any:
    """`x.shape` in a traced forward: only these attributes, of a tensor or a size."""
    if name not in _ATTRIBUTES or not isinstance(obj, (torch.Tensor, torch.Size)):
        raise TypeError(f"attribute {name!r} is not available here")
    return getattr(obj, name)


FUNCTIONS = _functions()
METHODS = frozenset({
    "view", "reshape", "flatten", "size", "dim", "relu", "sigmoid", "tanh", "softmax", "log_softmax",
    "contiguous", "permute", "transpose", "squeeze", "unsqueeze", "mean", "sum", "add", "sub", "mul", "div",
    "mm", "matmul", "t", "float", "clone", "detach", "view_as", "reshape_as", "max", "clamp", "exp", "sqrt",
    "pow", "neg", "abs"})
_DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64, "int32": torch.int32,
           "bool": torch.bool, "float16": torch.float16}


# ------------------------------------------------------------------ argument checks

def _int(args: dict, key: str, low: int, high: int, what: str) -> int:
    value = args.get(key)
    if type(value) is not int or not low <= value <= high:
        raise ModelRejected(f"{what} has `{key}` = {str(value)[:40]}: expected a whole number from {low} to {high}")
    return value


def _ints(args: dict, key: str, n: int, low: int, high: int, what: str) -> tuple[int, ...]:
    value = args.get(key)
    items = value if isinstance(value, list) else [value]
    if len(items) == 1:
        items = items * n
    if len(items) != n or not all(type(v) is int and low <= v <= high for v in items):
        raise ModelRejected(f"{what} has `{key}` = {str(value)[:40]}: expected {n} whole numbers from {low} to {high}")
    return tuple(items)


def _number(args: dict, key: str, low: float, high: float, what: str, *, optional: bool = False) -> float | None:
    value = args.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ModelRejected(f"{what} has `{key}` = {str(value)[:40]}: expected a number from {low:g} to {high:g}")
    return float(value)


def _flag(args: dict, key: str, what: str) -> bool:
    value = args.get(key)
    if not isinstance(value, bool):
        raise ModelRejected(f"{what} has `{key}` = {str(value)[:40]}: expected True or False")
    return value


@dataclass(frozen=True)
class _Plan:
    """A module to build and how many numbers it will hold (counted before building)."""

    build: Callable[[], nn.Module]
    params: int


def _conv(a: dict, what: str) -> _Plan:
    cin = _int(a, "in_channels", 1, MAX_CHANNELS, what)
    cout = _int(a, "out_channels", 1, MAX_CHANNELS, what)
    groups = _int(a, "groups", 1, MAX_CHANNELS, what)
    k = _ints(a, "kernel_size", 2, 1, MAX_KERNEL, what)
    stride = _ints(a, "stride", 2, 1, MAX_KERNEL, what)
    dilation = _ints(a, "dilation", 2, 1, MAX_KERNEL, what)
    padding: Any = a.get("padding")
    if padding not in ("same", "valid"):
        padding = _ints(a, "padding", 2, 0, MAX_KERNEL, what)
    bias = _flag(a, "bias", what)
    if a.get("padding_mode") not in ("zeros", "reflect", "replicate", "circular"):
        raise ModelRejected(f"{what} has an unknown `padding_mode`")
    if cin % groups or cout % groups:
        raise ModelRejected(f"{what}: in_channels and out_channels must be divisible by groups")
    count = cout * (cin // groups) * k[0] * k[1] + (cout if bias else 0)
    return _Plan(lambda: nn.Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups,
                                   bias=bias, padding_mode=a["padding_mode"]), count)


def _bn(cls: type) -> Callable[[dict, str], _Plan]:
    def plan(a: dict, what: str) -> _Plan:
        n = _int(a, "num_features", 1, MAX_FEATURES, what)
        eps = _number(a, "eps", 0.0, 1.0, what)
        momentum = _number(a, "momentum", 0.0, 1.0, what, optional=True)
        affine, track = _flag(a, "affine", what), _flag(a, "track_running_stats", what)
        return _Plan(lambda: cls(n, eps=eps, momentum=momentum, affine=affine, track_running_stats=track), 4 * n + 1)
    return plan


def _pool(a: dict, what: str) -> tuple:
    k = _ints(a, "kernel_size", 2, 1, MAX_KERNEL, what)
    stride = _ints(a, "stride", 2, 1, MAX_KERNEL, what) if a.get("stride") not in (None, []) else k
    padding = _ints(a, "padding", 2, 0, MAX_KERNEL, what)
    return k, stride, padding, _flag(a, "ceil_mode", what)


def _maxpool(a: dict, what: str) -> _Plan:
    k, stride, padding, ceil = _pool(a, what)
    dilation = _ints(a, "dilation", 2, 1, MAX_KERNEL, what)
    return _Plan(lambda: nn.MaxPool2d(k, stride, padding, dilation, ceil_mode=ceil), 0)


def _avgpool(a: dict, what: str) -> _Plan:
    k, stride, padding, ceil = _pool(a, what)
    include = _flag(a, "count_include_pad", what)
    divisor = a.get("divisor_override")
    if divisor is not None:
        divisor = _int(a, "divisor_override", 1, MAX_KERNEL * MAX_KERNEL, what)
    return _Plan(lambda: nn.AvgPool2d(k, stride, padding, ceil, include, divisor), 0)


def _linear(a: dict, what: str) -> _Plan:
    fin = _int(a, "in_features", 1, MAX_FEATURES, what)
    fout = _int(a, "out_features", 1, MAX_FEATURES, what)
    bias = _flag(a, "bias", what)
    return _Plan(lambda: nn.Linear(fin, fout, bias=bias), fin * fout + (fout if bias else 0))


def _dim(a: dict, key: str, what: str) -> int:
    value = a.get(key)
    if type(value) is not int or not -8 <= value <= 8:
        raise ModelRejected(f"{what} has `{key}` = {str(value)[:40]}: expected a dimension from -8 to 8")
    return value


def _softmax(a: dict, what: str) -> _Plan:
    dim = None if a.get("dim") is None else _dim(a, "dim", what)
    return _Plan(lambda: nn.Softmax(dim=dim), 0)


def _zero_pad(a: dict, what: str) -> _Plan:
    pad = _ints(a, "padding", 4, 0, MAX_KERNEL, what)
    return _Plan(lambda: nn.ZeroPad2d(pad), 0)


def _adaptive(a: dict, what: str) -> _Plan:
    size = _ints(a, "output_size", 2, 1, MAX_KERNEL, what)
    return _Plan(lambda: nn.AdaptiveAvgPool2d(size), 0)


def _dropout(cls: type) -> Callable[[dict, str], _Plan]:
    def plan(a: dict, what: str) -> _Plan:
        p = _number(a, "p", 0.0, 1.0, what)
        return _Plan(lambda: cls(p), 0)
    return plan


def _flatten(a: dict, what: str) -> _Plan:
    start, end = _dim(a, "start_dim", what), _dim(a, "end_dim", what)
    return _Plan(lambda: nn.Flatten(start, end), 0)


def _simple(cls: type) -> Callable[[dict, str], _Plan]:
    return lambda a, what: _Plan(cls, 0)


PLANS: dict[str, Callable[[dict, str], _Plan]] = {
    "Conv2d": _conv, "BatchNorm2d": _bn(nn.BatchNorm2d), "BatchNorm1d": _bn(nn.BatchNorm1d),
    "ReLU": _simple(nn.ReLU), "LeakyReLU": lambda a, w: _Plan(
        (lambda s: lambda: nn.LeakyReLU(s))(_number(a, "negative_slope", -1e6, 1e6, w)), 0),
    "Sigmoid": _simple(nn.Sigmoid), "Tanh": _simple(nn.Tanh), "Softmax": _softmax,
    "MaxPool2d": _maxpool, "AvgPool2d": _avgpool, "AdaptiveAvgPool2d": _adaptive, "ZeroPad2d": _zero_pad,
    "Flatten": _flatten, "Linear": _linear, "Dropout": _dropout(nn.Dropout), "Dropout2d": _dropout(nn.Dropout2d),
    "Identity": _simple(nn.Identity),
}
CONTAINERS = frozenset({"Sequential", "ModuleList"})


# ------------------------------------------------------------------ the rebuilt module

class RebuiltModule(nn.Module):
    """The student's module, rebuilt: allow-listed submodules at their original paths,
    and the traced graph, run node by node (no generated code). A module that could not
    be traced keeps its modules and weights, and says why it has no graph."""

    def __init__(self, class_name: str):
        super().__init__()
        self.class_name = class_name
        self.fx_graph: torch.fx.Graph | None = None
        self.untraceable: str = ""
        self.untraceable_where: tuple | None = None
        self.node_locations: dict[str, tuple[str, int, str]] = {}
        self.module_classes: dict[str, str] = {}
        self.module_locations: dict[str, tuple[str, int, str]] = {}  # path -> where the student created it

    def forward(self, *args: Any) -> Any:
        if self.fx_graph is None:
            raise RuntimeError(f"{self.class_name}.forward could not be traced: {self.untraceable}")
        return torch.fx.Interpreter(self, graph=self.fx_graph).run(*args)


def rebuild_torch(payload: TorchModulePayload) -> RebuiltModule:
    """The vetted, rebuilt module; ModelRejected (student-facing) for anything else,
    including a combination of settings torch itself refuses (padding='same' with
    stride 2, ...)."""
    try:
        return _rebuild(payload)
    except ModelRejected:
        raise
    except (ValueError, TypeError, RuntimeError, KeyError, IndexError, AttributeError) as exc:
        raise ModelRejected(f"the returned module could not be rebuilt: {type(exc).__name__}: "
                            f"{str(exc)[:300]}") from None


def _rebuild(payload: TorchModulePayload) -> RebuiltModule:
    body = payload.description
    if not isinstance(body, dict) or body.get("format") != 1:
        raise ModelRejected("the returned module's description is malformed")
    root = RebuiltModule(_text(body.get("class_name"), "the module's class name"))
    leaves = _build_modules(root, body.get("modules"))
    graph = body.get("graph")
    if not isinstance(graph, dict):
        raise ModelRejected("the returned module's description is malformed (no graph)")
    _load_state(root, payload.state, graph, weightless=payload.weightless)
    if graph.get("traced") is True:
        root.fx_graph = _build_graph(root, graph.get("nodes"), leaves)
    else:
        root.untraceable = _text(graph.get("reason"), "the trace's failure", 1000)
        where = graph.get("where")
        if isinstance(where, list) and len(where) == 3 and isinstance(where[0], str) and type(where[1]) is int \
                and isinstance(where[2], str):
            root.untraceable_where = (where[0][:100], where[1], where[2][:120])
    root.train(body.get("training") is not False)
    return root


def _text(value: Any, what: str, limit: int = 300) -> str:
    if not isinstance(value, str):
        raise ModelRejected(f"the returned module's description is malformed ({what})")
    return value[:limit]


def _display_class(name: str, builtin: bool) -> str:
    return f"nn.{name}" if builtin else name


def _build_modules(root: RebuiltModule, entries: Any) -> dict[str, str]:
    """Submodules at their paths; returns {path: class} of the allow-listed leaves."""
    if not isinstance(entries, list) or len(entries) > MAX_MODULES:
        raise ModelRejected(f"the returned module has more than {MAX_MODULES} submodules, or a malformed list")
    plans: list[tuple[str, str, _Plan | None, Any]] = []
    total = 0
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) \
                or not _PATH.fullmatch(entry["path"]) or not isinstance(entry.get("class"), str):
            raise ModelRejected("the returned module's description is malformed (a submodule)")
        path, cls = entry["path"], entry["class"][:100]
        what = f"the submodule `{path}` ({_display_class(cls, entry.get('builtin') is True)})"
        if entry.get("builtin") is True and cls in PLANS:
            args = entry.get("args")
            if not isinstance(args, dict):
                raise ModelRejected(f"{what} could not be read: {str(entry.get('error', 'no arguments'))[:200]}")
            plan = PLANS[cls](args, what)
            total += plan.params
            if total > MAX_PARAMS:
                raise ModelRejected(f"the returned module holds more than {MAX_PARAMS:,} parameters")
            plans.append((path, cls, plan, entry.get("created")))
        elif entry.get("builtin") is True and cls not in CONTAINERS:
            raise ModelRejected(f"{what} is not one of the layers this grader rebuilds; allowed: "
                                + ", ".join(f"nn.{c}" for c in sorted(PLANS)))
        else:  # a container (nn.Sequential, or the student's own class): its computation is in the graph
            plans.append((path, cls, None, entry.get("created")))
    leaves: dict[str, str] = {}
    for path, cls, plan, created in plans:
        parent, _, name = path.rpartition(".")
        holder = _container(root, parent)
        if name in holder._modules:
            raise ModelRejected(f"the submodule `{path}` is listed twice")
        holder.add_module(name, plan.build() if plan is not None else nn.Module())
        root.module_classes[path] = cls
        if _where(created):
            root.module_locations[path] = _where(created)
        if plan is not None:
            leaves[path] = cls
    return leaves


def _container(root: nn.Module, path: str) -> nn.Module:
    module = root
    for part in path.split(".") if path else ():
        child = module._modules.get(part)
        if child is None:
            child = nn.Module()
            module.add_module(part, child)
        module = child
    return module


def _load_state(root: RebuiltModule, state: tuple, graph: dict, *, weightless: bool) -> None:
    """Copy the arrays in: exactly the rebuilt modules' keys and shapes, plus the tensors
    the graph reads directly (`get_attr`, e.g. a student's own `nn.Parameter`)."""
    expected = root.state_dict()
    received = dict(state)
    if len(received) != len(state):
        raise ModelRejected("the returned module's state lists a key twice")
    extra = [k for k in received if k not in expected]
    read = {n.get("target") for n in (graph.get("nodes") or []) if isinstance(n, dict) and n.get("op") == "get_attr"}
    for key in extra:
        if key not in read or not _PATH.fullmatch(key):
            raise ModelRejected(f"the returned module's state holds `{key[:100]}`, which none of its layers has")
        array = received[key]
        if array.size > MAX_PARAMS:
            raise ModelRejected(f"the tensor `{key[:100]}` is too large")
        parent, _, name = key.rpartition(".")
        holder = _container(root, parent)
        if name in holder._modules or name in holder._parameters:
            raise ModelRejected(f"the returned module's state holds `{key[:100]}` twice")
        holder.register_parameter(name, nn.Parameter(_tensor(array, key), requires_grad=False))
    if weightless:
        return
    missing = [k for k in expected if k not in received]
    if missing:
        raise ModelRejected(f"the returned module's state lacks `{missing[0]}`")
    with torch.no_grad():
        for key, target in expected.items():
            array = received[key]
            if tuple(array.shape) != tuple(target.shape):
                raise ModelRejected(f"the returned module's `{key}` has shape {tuple(array.shape)}, "
                                    f"not {tuple(target.shape)} as its layer needs")
            target.copy_(_tensor(array, key).to(target.dtype))


def _tensor(array: np.ndarray, key: str) -> torch.Tensor:
    if array.dtype.kind not in "fiub":
        raise ModelRejected(f"the returned module's `{key[:100]}` is not numeric")
    return torch.from_numpy(np.array(array, copy=True))


def _build_graph(root: RebuiltModule, nodes: Any, leaves: dict[str, str]) -> torch.fx.Graph:
    if not isinstance(nodes, list) or len(nodes) > MAX_NODES:
        raise ModelRejected(f"the returned module's forward has more than {MAX_NODES} operations, or is malformed")
    graph = torch.fx.Graph()
    made: dict[str, torch.fx.Node] = {}
    outputs = 0
    for entry in nodes:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                or not _NAME.fullmatch(entry["name"]) or entry["name"] in made:
            raise ModelRejected("the returned module's graph is malformed (a node)")
        if outputs:
            raise ModelRejected("the returned module's graph has operations after its output")
        op, target = entry.get("op"), entry.get("target")
        raw_args = entry.get("args", [])
        if not isinstance(raw_args, list):
            raise ModelRejected("the returned module's graph is malformed (arguments)")
        args = tuple(_value(a, made, 0) for a in raw_args)
        kwargs = _value({"dict": entry.get("kwargs", {})}, made, 0)
        if op == "placeholder":
            if not isinstance(target, str) or not _NAME.fullmatch(target):
                raise ModelRejected("the returned module's graph is malformed (an input's name)")
            node = graph.placeholder(target, default_value=args[0] if args else
                                     inspect.Signature.empty)
        elif op == "call_module":
            if target not in leaves:
                raise ModelRejected(f"forward calls `{str(target)[:100]}`, which is not one of the allowed layers")
            node = graph.call_module(target, tuple(args), kwargs)
        elif op == "call_function":
            fn = FUNCTIONS.get(target) if isinstance(target, str) else None
            if fn is None:
                raise ModelRejected(f"forward calls `{str(target)[:100]}`, which this grader does not run "
                                    "(allowed: torch.nn layers and " + ", ".join(sorted(FUNCTIONS)) + ")")
            if target == "getattr" and (len(args) != 2 or args[1] not in _ATTRIBUTES):
                raise ModelRejected("forward reads a tensor attribute other than " + ", ".join(sorted(_ATTRIBUTES)))
            node = graph.call_function(fn, tuple(args), kwargs)
        elif op == "call_method":
            if target not in METHODS:
                raise ModelRejected(f"forward calls the tensor method `.{str(target)[:100]}()`, which this grader "
                                    "does not run")
            node = graph.call_method(target, tuple(args), kwargs)
        elif op == "get_attr":
            if not isinstance(target, str) or target not in dict(root.named_parameters()) | dict(root.named_buffers()):
                raise ModelRejected(f"forward reads `{str(target)[:100]}`, which is not one of its parameters")
            node = graph.get_attr(target)
        elif op == "output":
            node = graph.output(args[0] if len(args) == 1 else args)
            outputs += 1
        else:
            raise ModelRejected(f"the returned module's graph holds an unknown operation {str(op)[:40]!r}")
        made[entry["name"]] = node
        where = _where(entry.get("where"))
        if where:
            root.node_locations[node.name] = where
    if outputs != 1:
        raise ModelRejected("the returned module's graph has no output")
    return graph


def _where(value: Any) -> tuple[str, int, str] | None:
    """[cell label, line, source] as sent; anything malformed is dropped (a location only
    improves the feedback)."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and type(value[1]) is int \
            and isinstance(value[2], str) and 0 < value[1] < 10_000_000 \
            and not any(ord(c) < 32 for c in value[0] + value[2]):
        return value[0][:100], value[1], value[2][:120]
    return None


def _value(tree: Any, made: dict[str, torch.fx.Node], depth: int) -> Any:
    """A node argument back from JSON (see describe._argument); nodes must exist already."""
    if depth > 12:
        raise ModelRejected("the returned module's graph is nested too deeply")
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, list):
        return [_value(v, made, depth + 1) for v in tree]
    if not isinstance(tree, dict) or len(tree) != 1:
        raise ModelRejected("the returned module's graph is malformed (an argument)")
    (tag, body), = tree.items()
    if tag == "node" and isinstance(body, str) and body in made:
        return made[body]
    if tag == "tuple" and isinstance(body, list):
        return tuple(_value(v, made, depth + 1) for v in body)
    if tag == "dict" and isinstance(body, dict):
        return {str(k): _value(v, made, depth + 1) for k, v in body.items()}
    if tag == "slice" and isinstance(body, list) and len(body) == 3:
        return slice(*(_value(v, made, depth + 1) for v in body))
    if tag == "ellipsis":
        return Ellipsis
    if tag == "float" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "dtype" and body in _DTYPES:
        return _DTYPES[body]
    if tag == "unsupported":
        raise ModelRejected(f"forward passes a {str(body)[:60]} to an operation, which this grader cannot rebuild")
    raise ModelRejected("the returned module's graph is malformed (an argument)")


__all__ = ["FUNCTIONS", "METHODS", "PLANS", "RebuiltModule", "rebuild_torch"]
