"""The shapes a PyTorch module's layers see: what the neutral checks need besides the graph.

A Keras model is built at an input shape and keeps it; an `nn.Module` is not, so the
checks that decide things at a shape (is 'same' padding any padding on this map, are
two pooling settings the same function here, how many channels does each input of a
`torch.cat` bring) would have nothing to go on. The shape a module's graph is read at is:

1. the shape it last ran on through the grader (`record_input_shape`: the output checks
   record the test's own batch on both modules before reading their graphs, so the
   graph check and the output check decide at the test's shapes), or one an instructor
   recorded with the same function;
2. otherwise one derived from its layers: a module whose first weighted layer is an
   `nn.Linear` takes `(in_features,)`; one whose first weighted layer is an
   `nn.Conv2d`/`nn.BatchNorm2d` takes that many channels, at the first of a few usual
   image sizes it runs at (the channel counts are what the merge order needs; where a
   setting matters only at some sizes, the test that runs the size the exercise lets
   vary decides, as docs/authoring.md asks of every assignment).

Shapes are found by running the graph once on a batch of one zero image in `eval()`,
node by node (`torch.fx.Interpreter`), the module left as it was. (Tensors of torch's
`meta` device would skip the arithmetic, but their first use imports sympy and
torch._dynamo, about 3 s of CPU in every grading process.) The
neutral checks read shapes channels last, as Keras writes them (`(None, H, W, C)`), so
an NCHW shape is written that way in the graph; `nchw` turns it back.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterable

import torch
import torch.fx
import torch.nn as nn

from grader.checks import CheckFailed

_RECORDED = "_grader_input_shape"
# Image sizes tried, smallest first (a failed try costs a forward pass up to the layer
# that refuses it, and a large one most), for a module with no recorded input: squares,
# then rectangles of usual sides (a Linear written for a rectangle).
_SQUARES = (8, 16, 28, 32, 48, 64, 96, 112, 128, 160, 192, 224, 256)
_SIDES = (28, 32, 48, 64, 96, 128, 224)
# Channel-preserving layers that may come before the first weighted one.
_KEEPS_CHANNELS = (nn.ZeroPad2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.ReLU, nn.LeakyReLU,
                   nn.Sigmoid, nn.Tanh, nn.Dropout, nn.Dropout2d, nn.Identity)


def record_input_shape(module: Any, shape: Iterable[int]) -> None:
    """Remember the input shape (batch axis left out, NCHW) `module` ran on, or that the
    instructor says it was built for; its graph is read at that shape from then on."""
    if isinstance(module, nn.Module):
        module.__dict__[_RECORDED] = tuple(int(d) for d in shape)


def forget_input_shape(module: Any) -> None:
    """Back to the shape read from the layers (a kept reference module handed out to the
    next submission must not carry the last test's shape)."""
    getattr(module, "__dict__", {}).pop(_RECORDED, None)


def recorded_input_shape(module: Any) -> tuple[int, ...] | None:
    held = getattr(module, "__dict__", {}).get(_RECORDED)
    return held if isinstance(held, tuple) else None


def channels_last(shape: tuple | None) -> tuple | None:
    """An NCHW (or NCL) tensor shape as the neutral checks read it: batch as None,
    channels last; a rank-2 (N, features) shape keeps its order."""
    if shape is None:
        return None
    dims = (None, *shape[1:])
    return (dims[0], *dims[2:], dims[1]) if len(dims) > 2 else dims


def nchw(shape: tuple) -> tuple:
    """The inverse of `channels_last`, batch axis included as given."""
    return (shape[0], shape[-1], *shape[1:-1]) if len(shape) > 2 else tuple(shape)


class _Recorder(torch.fx.Interpreter):
    """Runs the graph and keeps each node's output shape (tensors only)."""

    def __init__(self, root: nn.Module, graph: torch.fx.Graph):
        super().__init__(root, graph=graph, garbage_collect_values=True)
        self.shapes: dict[torch.fx.Node, tuple] = {}

    def run_node(self, n: torch.fx.Node) -> Any:
        out = super().run_node(n)
        if isinstance(out, torch.Tensor):
            self.shapes[n] = tuple(int(d) for d in out.shape)
        return out


def node_shapes(root: nn.Module, graph: torch.fx.Graph, shape: tuple) -> dict[torch.fx.Node, tuple] | None:
    """Each tensor node's output shape (NCHW, batch 1) for an input of `shape` (batch left
    out); None when the graph does not run at that shape. Runs on zeros in `eval()` on one
    thread; the modules' modes and buffers are put back (a forward may write a buffer)."""
    modes = [(m, m.training) for m in root.modules()]
    buffers = [(b, b.detach().clone()) for b in root.buffers()]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        root.eval()
        recorder = _Recorder(root, graph)
        with torch.no_grad():
            recorder.run(torch.zeros((1, *shape)))
        return recorder.shapes
    except Exception:  # noqa: BLE001 - a shape the module does not take
        return None
    finally:
        torch.set_num_threads(threads)
        with torch.no_grad():
            for buffer, value in buffers:
                buffer.copy_(value)
        for module, mode in modes:
            module.training = mode


def first_layer(root: nn.Module, graph: torch.fx.Graph) -> nn.Module | None:
    """The first weighted layer the input reaches through channel-preserving layers
    only; None when anything else (a flatten, a reshape, a function) comes first."""
    modules = dict(root.named_modules())
    for node in graph.nodes:
        if node.op in ("placeholder", "get_attr"):
            continue
        if node.op != "call_module":
            return None
        module = modules.get(str(node.target))
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm1d)):
            return module
        if not isinstance(module, _KEEPS_CHANNELS):
            return None
    return None


def _channels(layer: nn.Module) -> tuple[int, int] | None:
    """(input channels or features, input rank without the batch axis)."""
    if isinstance(layer, nn.Conv2d):
        return layer.in_channels, 3
    if isinstance(layer, nn.BatchNorm2d):
        return layer.num_features, 3
    if isinstance(layer, (nn.Linear,)):
        return layer.in_features, 1
    if isinstance(layer, nn.BatchNorm1d):
        return layer.num_features, 1
    return None


def image_sizes_taken(root: nn.Module, graph: torch.fx.Graph, channels: int, *,
                      first_only: bool = False) -> list[tuple[int, int]]:
    """The usual sizes an image module runs at: squares, and when none does, rectangles
    of usual sides (a Linear written for 48x32 fits 32x48 too: both are listed)."""
    found: list[tuple[int, int]] = []
    for size in _SQUARES:
        if node_shapes(root, graph, (channels, size, size)) is not None:
            found.append((size, size))
            if first_only:
                return found
    if found:
        return found
    for h in _SIDES:
        for w in _SIDES:
            if h != w and node_shapes(root, graph, (channels, h, w)) is not None:
                found.append((h, w))
                if first_only:
                    return found
    return found


# Derived shapes by the module's structure: a class's submissions mostly share the
# reference's layers, and a Linear written for a rectangle costs tens of tries to place.
_BY_STRUCTURE: OrderedDict[tuple, tuple[int, ...] | None] = OrderedDict()
_STRUCTURES_KEPT = 256


def _structure(root: nn.Module, graph: torch.fx.Graph) -> tuple:
    """What the shapes depend on: every operation, its arguments and each called layer's
    class and settings, and the shape of each tensor read directly (not the weights)."""
    modules = dict(root.named_modules())
    parts = []
    for node in graph.nodes:
        target = modules.get(str(node.target)) if node.op == "call_module" else None
        if target is not None:
            what = f"{type(target).__name__}({target.extra_repr()})"
        elif node.op == "get_attr":
            try:
                what = f"{node.target}:{tuple(root.get_parameter(str(node.target)).shape)}"
            except AttributeError:
                what = f"{node.target}:?"
        else:
            what = str(node.target)
        parts.append((node.op, what, repr(node.args), repr(node.kwargs)))
    return tuple(parts)


def example_input_shape(root: nn.Module, graph: torch.fx.Graph) -> tuple[int, ...] | None:
    """The input shape (batch left out, NCHW) the module's graph is read at: recorded,
    else derived from its first weighted layer (see the module); None when neither."""
    recorded = recorded_input_shape(root)
    if recorded is not None:
        return recorded
    key = _structure(root, graph)
    if key in _BY_STRUCTURE:
        _BY_STRUCTURE.move_to_end(key)
        return _BY_STRUCTURE[key]
    found = _derive(root, graph)
    _BY_STRUCTURE[key] = found
    while len(_BY_STRUCTURE) > _STRUCTURES_KEPT:
        _BY_STRUCTURE.popitem(last=False)
    return found


def _derive(root: nn.Module, graph: torch.fx.Graph) -> tuple[int, ...] | None:
    layer = first_layer(root, graph)
    found = _channels(layer) if layer is not None else None
    if found is None:
        return None
    channels, rank = found
    if rank == 1:
        return (channels,)
    sizes = image_sizes_taken(root, graph, channels, first_only=True)  # enough to read the graph at
    return (channels, *sizes[0]) if sizes else None


def derived_input_shape(root: nn.Module, graph: torch.fx.Graph) -> tuple:
    """What `input_shape` answers for a module that never ran here: `(in_features,)`
    for a module starting with an `nn.Linear`; `(C, None, None)` for one that runs at
    any image size (fully convolutional, or global pooling before its classifier);
    otherwise a CheckFailed saying why the layers do not tell."""
    layer = first_layer(root, graph)
    found = _channels(layer) if layer is not None else None
    if found is None:
        raise CheckFailed(
            "The grader cannot tell which input shape this PyTorch module was built for: its first layer "
            "(before any nn.Conv2d or nn.Linear) does not fix the number of input channels, and a module does "
            "not record its input.",
            hint="(for the instructor) run the module on an input of the shape first (expect_output_shape or "
                 "expect_same_outputs record it), or call grader.frameworks.torch.shapes.record_input_shape.",
            diagnosis="input_shape_unknown")
    channels, rank = found
    if rank == 1:
        return (channels,)
    runs = [s for s in ((64, 96), (96, 64), (128, 128)) if node_shapes(root, graph, (channels, *s)) is not None]
    if len(runs) == 3:
        return channels, None, None
    taken = image_sizes_taken(root, graph, channels)
    if len(taken) == 1:
        return (channels, *taken[0])
    raise CheckFailed(
        f"The grader cannot tell which image size this PyTorch module was built for: it takes {channels} "
        "channels, and its layers fit " + ("no usual image size" if not taken else "several image sizes ("
                                            + ", ".join(f"{h}x{w}" for h, w in taken[:4]) + ")")
        + ", and a module does not record its input.",
        hint="(for the instructor) run the module on an input of the shape first (expect_output_shape or "
             "expect_same_outputs record it), or call grader.frameworks.torch.shapes.record_input_shape.",
        diagnosis="input_shape_unknown")


__all__ = ["channels_last", "derived_input_shape", "example_input_shape", "first_layer", "forget_input_shape",
           "image_sizes_taken", "nchw", "node_shapes", "record_input_shape", "recorded_input_shape"]
