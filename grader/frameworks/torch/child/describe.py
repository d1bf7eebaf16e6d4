"""A student's `nn.Module` as data, in the sandbox child: what crosses the boundary.

A module object cannot cross (unpickling it in the grading process would run code the
student chose), so the child writes down three things the grading process can rebuild
from an allow-list (`grader.frameworks.torch.rebuild`):
- the module tree: each submodule's qualified name, its class name and the constructor
  arguments read back from its attributes (`nn.Conv2d.out_channels`, `.padding`, ...);
- the computation, as the `torch.fx` graph of `forward`: every node's operation, its
  target (a submodule's path, a function's name from the table below, a method name),
  and its arguments as plain JSON (nodes referred to by name);
- the state dict (parameters and buffers, BatchNorm's running statistics included) as
  numpy arrays, which the wire carries as raw bytes.

A function the table does not know travels as its name with `known: false`: the grading
process refuses it, with the name in the message. A module `torch.fx` cannot trace
(data-dependent control flow in `forward`) travels with the reason and the line instead
of a graph.

Like the rest of this package, it imports nothing from the rest of `grader`: under
bubblewrap the package is mounted alone (`grader.sandbox.hooks`).
"""
from __future__ import annotations

import operator
import re
from typing import Any, Callable

import numpy as np

FORMAT = 1
MAX_MODULES = 2000
MAX_NODES = 5000
MAX_TEXT = 300
_DEPTH = 12

# How each allow-listed torch.nn class's constructor arguments are read back.
_SIZE = ("kernel_size", "stride", "padding", "dilation")


def _pair(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return _plain(value)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return None


def _conv_args(m: Any) -> dict:
    return {"in_channels": m.in_channels, "out_channels": m.out_channels,
            "kernel_size": _pair(m.kernel_size), "stride": _pair(m.stride), "padding": _pair(m.padding),
            "dilation": _pair(m.dilation), "groups": m.groups, "bias": m.bias is not None,
            "padding_mode": str(m.padding_mode)}


def _bn_args(m: Any) -> dict:
    return {"num_features": m.num_features, "eps": float(m.eps),
            "momentum": None if m.momentum is None else float(m.momentum),
            "affine": bool(m.affine), "track_running_stats": bool(m.track_running_stats)}


def _maxpool_args(m: Any) -> dict:
    return {"kernel_size": _pair(m.kernel_size), "stride": _pair(m.stride), "padding": _pair(m.padding),
            "dilation": _pair(m.dilation), "ceil_mode": bool(m.ceil_mode)}


def _avgpool_args(m: Any) -> dict:
    return {"kernel_size": _pair(m.kernel_size), "stride": _pair(m.stride), "padding": _pair(m.padding),
            "ceil_mode": bool(m.ceil_mode), "count_include_pad": bool(m.count_include_pad),
            "divisor_override": m.divisor_override}


ARGUMENTS: dict[str, Callable[[Any], dict]] = {
    "Conv2d": _conv_args,
    "BatchNorm2d": _bn_args,
    "BatchNorm1d": _bn_args,
    "ReLU": lambda m: {},
    "LeakyReLU": lambda m: {"negative_slope": float(m.negative_slope)},
    "Sigmoid": lambda m: {},
    "Tanh": lambda m: {},
    "Softmax": lambda m: {"dim": m.dim},
    "MaxPool2d": _maxpool_args,
    "AvgPool2d": _avgpool_args,
    "AdaptiveAvgPool2d": lambda m: {"output_size": _pair(m.output_size)},
    "ZeroPad2d": lambda m: {"padding": _pair(m.padding)},
    "Flatten": lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim},
    "Linear": lambda m: {"in_features": m.in_features, "out_features": m.out_features, "bias": m.bias is not None},
    "Dropout": lambda m: {"p": float(m.p)},
    "Dropout2d": lambda m: {"p": float(m.p)},
    "Identity": lambda m: {},
    "Sequential": lambda m: {},
    "ModuleList": lambda m: {},
}


# The functions a traced `forward` may call, by module: one list for both sides (the child
# names them, `grader.frameworks.torch.rebuild` finds them again by those names).
TORCH_FUNCTIONS = ("add", "sub", "mul", "cat", "flatten", "relu", "sigmoid", "tanh", "softmax", "reshape",
                   "squeeze", "unsqueeze", "mean", "matmul", "mm", "transpose", "permute", "max_pool2d",
                   "avg_pool2d", "conv2d", "stack", "t")
F_FUNCTIONS = ("relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "max_pool2d", "avg_pool2d",
               "adaptive_avg_pool2d", "conv2d", "linear", "dropout", "dropout2d", "batch_norm", "pad")
OPERATOR_FUNCTIONS = ("add", "sub", "mul", "truediv", "floordiv", "neg", "getitem", "matmul")


def function_names() -> dict[Any, str]:
    """The functions a traced `forward` may call, by the name both sides use. Built on
    each call (cheap) so that a student who replaced `torch.add` in the child gets their
    own object, which is then not found here: unknown, refused."""
    import torch
    import torch.nn.functional as F
    table: dict[Any, str] = {}
    for name in TORCH_FUNCTIONS:
        fn = getattr(torch, name, None)
        if fn is not None:
            table.setdefault(fn, f"torch.{name}")
    for name in F_FUNCTIONS:
        fn = getattr(F, name, None)
        if fn is not None:
            table.setdefault(fn, f"F.{name}")
    for name in OPERATOR_FUNCTIONS:
        table.setdefault(getattr(operator, name), f"operator.{name}")
    table.setdefault(getattr, "getattr")
    return table


def _qualname(fn: Any) -> str:
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
    return f"{module}.{name}"[:MAX_TEXT] if module else str(name)[:MAX_TEXT]


def _argument(value: Any, depth: int = 0) -> Any:
    """A node argument as JSON: {"node": name}, scalars, {"tuple": [...]}, lists, slices,
    dtypes by name; anything else {"unsupported": type name}."""
    import torch
    import torch.fx
    if depth > _DEPTH:
        return {"unsupported": "nested too deeply"}
    if isinstance(value, torch.fx.Node):
        return {"node": value.name}
    if value is None or isinstance(value, (bool, int, str)):
        return value if not isinstance(value, str) else value[:MAX_TEXT]
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else {"float": repr(value)}
    if isinstance(value, tuple):
        return {"tuple": [_argument(v, depth + 1) for v in value]}
    if isinstance(value, list):
        return [_argument(v, depth + 1) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k[:MAX_TEXT]: _argument(v, depth + 1) for k, v in value.items()}}
    if isinstance(value, slice):
        return {"slice": [_argument(value.start, depth + 1), _argument(value.stop, depth + 1),
                          _argument(value.step, depth + 1)]}
    if value is Ellipsis:
        return {"ellipsis": True}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).replace("torch.", "")}
    return {"unsupported": type(value).__name__[:MAX_TEXT]}


_CREATED: Any = None  # module -> [cell label, line, source], while the child lives


def record_creations(labels: set[str] | frozenset) -> bool:
    """Before any student code runs in a torch child: note, for each module created, the
    innermost line of the student's cells on the stack (`self.bn = nn.BatchNorm2d(32)`,
    a line of `nn.Sequential(...)`), so feedback can point at it. Best effort."""
    import linecache
    import sys
    import weakref

    import torch
    global _CREATED
    original = torch.nn.Module.__init__
    if getattr(original, "_grader_records", False) or not labels:
        return False
    _CREATED = weakref.WeakKeyDictionary()
    wanted = frozenset(labels)

    def __init__(self, *args, **kwargs):  # noqa: N807 - wraps nn.Module.__init__
        original(self, *args, **kwargs)
        try:
            frame = sys._getframe(1)
            for _ in range(200):
                if frame is None:
                    return
                if frame.f_code.co_filename in wanted:
                    label, line = frame.f_code.co_filename, frame.f_lineno
                    source = " ".join(linecache.getline(label, line).split())[:120]
                    _CREATED[self] = [label[:100], int(line), source]
                    return
                frame = frame.f_back
        except Exception:  # noqa: BLE001 - a location only improves the feedback
            pass

    __init__._grader_records = True  # type: ignore[attr-defined]
    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    torch.nn.Module.__init__ = __init__
    return True


def _created(module: Any) -> list | None:
    try:
        return _CREATED.get(module) if _CREATED is not None else None
    except TypeError:
        return None


def _module_entry(path: str, module: Any) -> dict:
    import torch.nn as nn
    cls = type(module)
    name = cls.__name__
    builtin = cls.__module__.startswith("torch.nn.") and getattr(nn, name, None) is cls
    entry: dict[str, Any] = {"path": path[:MAX_TEXT], "class": name[:MAX_TEXT], "builtin": builtin}
    created = _created(module)
    if created:
        entry["created"] = created
    if builtin and name in ARGUMENTS:
        try:
            entry["args"] = ARGUMENTS[name](module)
        except Exception as exc:  # noqa: BLE001 - an attribute the student deleted or replaced
            entry["error"] = f"{type(exc).__name__}: {exc}"[:MAX_TEXT]
    return entry


_FRAME = re.compile(r'File "([^"]{1,200})", line (\d{1,9}), in ([^\n]{1,200})\n\s*([^\n]{0,400})')


def _where(stack_trace: str | None, labels: set[str]) -> list | None:
    """[cell label, line, source] of the innermost frame of the student's cells in an
    fx node's recorded stack trace."""
    if not stack_trace or not labels:
        return None
    found = None
    for match in _FRAME.finditer(stack_trace):
        if match.group(1) in labels:
            found = [match.group(1)[:100], int(match.group(2)), " ".join(match.group(4).split())[:120]]
    return found


def _locating_tracer(labels: set[str]) -> Any:
    """A tracer that notes, on each node, the innermost line of the student's cells that
    made it, by walking the Python stack as the node is created. torch.fx's own
    `record_stack_traces` records the same, but its first use imports torch._dynamo and
    sympy (about 1.6 s of CPU), which every fresh sandbox child paid again per model."""
    import sys

    import torch.fx

    class LocatingTracer(torch.fx.Tracer):
        def create_proxy(self, *args: Any, **kwargs: Any) -> Any:
            proxy = super().create_proxy(*args, **kwargs)
            frame = sys._getframe(1)
            for _ in range(200):
                if frame is None:
                    break
                if frame.f_code.co_filename in labels:
                    proxy.node.meta["grader_where"] = (frame.f_code.co_filename, frame.f_lineno)
                    break
                frame = frame.f_back
            return proxy

    return LocatingTracer() if labels else torch.fx.Tracer()


def _node_where(node: Any) -> list | None:
    """[cell label, line, source] noted by `_locating_tracer`."""
    import linecache

    at = node.meta.get("grader_where") if isinstance(getattr(node, "meta", None), dict) else None
    if not at:
        return None
    label, line = at
    return [label[:100], int(line), " ".join(linecache.getline(label, line).split())[:120]]


def _trace(module: Any, labels: set[str]) -> dict:
    tracer = _locating_tracer(labels)
    try:
        graph = tracer.trace(module)
    except Exception as exc:  # noqa: BLE001 - data-dependent control flow and the like
        return {"traced": False, "reason": f"{type(exc).__name__}: {exc}"[:1000],
                "where": _where("".join(__import__("traceback").format_tb(exc.__traceback__)), labels)}
    names = function_names()
    nodes = []
    for node in graph.nodes:
        if len(nodes) >= MAX_NODES:
            return {"traced": False, "reason": f"forward has more than {MAX_NODES} operations", "where": None}
        entry: dict[str, Any] = {"name": node.name[:MAX_TEXT], "op": node.op,
                                 "args": [_argument(a) for a in node.args],
                                 "kwargs": {str(k): _argument(v) for k, v in node.kwargs.items()}}
        if node.op == "call_function":
            known = names.get(node.target)
            entry["target"] = known or _qualname(node.target)
            entry["known"] = known is not None
        else:
            entry["target"] = str(node.target)[:MAX_TEXT]
        where = _node_where(node)
        if where:
            entry["where"] = where
        nodes.append(entry)
    return {"traced": True, "nodes": nodes}


def describe(module: Any, add_array: Callable[[np.ndarray], int], *, weights: bool = True,
             labels: set[str] | frozenset = frozenset()) -> dict:
    """The module as JSON; `add_array` stores an array in the message's blob and returns
    its index. `labels` are the student's cell labels (for where each operation is)."""
    modules = []
    for path, sub in module.named_modules():
        if not path:
            continue
        if len(modules) >= MAX_MODULES:
            raise ValueError(f"the model has more than {MAX_MODULES} submodules")
        modules.append(_module_entry(path, sub))
    state = []
    if weights:
        for key, tensor in module.state_dict(keep_vars=False).items():
            if tensor is not None:
                state.append([str(key)[:MAX_TEXT], add_array(tensor_array(tensor))])
    return {"format": FORMAT, "class_name": type(module).__name__[:MAX_TEXT], "modules": modules,
            "graph": _trace(module, set(labels)), "state": state, "weightless": not weights,
            "training": bool(module.training)}


MAX_HOOKED_CALLS = 5000


def run_with_hooks(namespace: dict, name: str, args: list, kwargs: dict, inputs: Any,
                   state: dict | None, training: bool | None) -> dict:
    """For a module `torch.fx` cannot trace: call the student's `name(*args, **kwargs)`,
    load `state` (the reference's weights, keyed by this module's own paths, sent in as
    tensors), run it on `inputs` in the mode asked, and record the order in which its
    layers were called (forward hooks on every leaf module). Returns data: the order as
    [path, class name, constructor arguments] and the outputs as tensors (arrays on the
    wire)."""
    import torch
    func = namespace.get(name)
    if not callable(func):
        return {"missing": str(name)[:200]}
    module = func(*args, **kwargs)
    if not isinstance(module, torch.nn.Module):
        return {"not_a_module": type(module).__name__[:200]}
    order: list = []
    paths = {id(m): p for p, m in module.named_modules()}

    def record(sub, _inputs, _output):
        if len(order) < MAX_HOOKED_CALLS:
            order.append(_module_entry(paths.get(id(sub), "?"), sub))

    handles = [m.register_forward_hook(record) for p, m in module.named_modules() if p and not m._modules]
    try:
        if state:
            module.load_state_dict({str(k): v for k, v in state.items()}, strict=False)
        if training is not None:
            module.train(bool(training))
        with torch.no_grad():
            output = module(inputs)
    finally:
        for handle in handles:
            handle.remove()
    outputs = list(output) if isinstance(output, (tuple, list)) else [output]
    return {"order": order, "outputs": outputs, "state_keys": [str(k)[:MAX_TEXT] for k in module.state_dict()][:MAX_MODULES]}


def tensor_array(value: Any) -> np.ndarray:
    """A torch tensor as a numpy array (detached, on the CPU, C order; a 0-d tensor stays
    0-d, which `np.ascontiguousarray` would not keep)."""
    array = value.detach().cpu().numpy()
    return array if array.flags.c_contiguous else array.copy(order="C")


__all__ = ["ARGUMENTS", "FORMAT", "F_FUNCTIONS", "OPERATOR_FUNCTIONS", "TORCH_FUNCTIONS", "describe", "function_names", "record_creations", "run_with_hooks", "tensor_array"]
