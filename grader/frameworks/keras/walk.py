"""Walking a Keras model's functional graph into a list of layer calls, bounded.

The graph is read from the outputs back to the inputs rather than from `model.layers`:
the graph is what the model computes, while `model.layers` can hide a layer that is
never reached or miss the order of a branch. Nested models are inlined (their inputs
resolved to the tensors the outer call passed in), so a model built from sub-models
reads like the same model written flat.

Two guarantees matter for grading untrusted models:
- Bounded: a model tiny as data (nested models each calling the one inside several
  times) can unroll to millions of calls. The walk counts distinct calls as it finds
  them and stops at `MAX_CALLS` with a student-facing `CheckFailed`, so one notebook
  cannot stall the grading process. Nothing here recurses on the graph's depth.
- Canonical order: the list is topological, and the branches feeding a merge are
  visited deepest first (ties broken by their structure), whatever order the student
  wrote them in. `Add()([shortcut, x])` and `Add()([x, shortcut])` therefore give the
  same list and the same inputs. Concatenate and Subtract give the same list too, but
  keep their inputs in the written order, which changes what they compute: a swap
  then shows as that one layer's inputs, not as a reordering of whole branches. A model
  input is a source like a layer, by its position among the model's inputs, so a block
  whose merge reads the block's own input (`concatenate([up, contractive_input])` in a
  model wrapping one decoder block) keeps its order as it does inside the whole model.

Works on models from `keras` (Keras 3) and `tf_keras` (Keras 2 API) through a few
duck-typed adapters, so nothing here imports a Keras package.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from grader.checks.limits import MAX_CALLS, GraphTooLarge
from grader.checks.specs import COMMUTATIVE, canonical

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


# ------------------------------------------------------------------- walking

def _too_large(count: int, nested: bool) -> GraphTooLarge:
    why = (": it calls models nested inside other models several times each, so every extra level multiplies "
           "the number of layer calls" if nested else "")
    return GraphTooLarge(
        f"Your model unrolls to more than {count:,} layer calls, more than the grader compares{why}. "
        "The specification's model is much smaller.",
        hint=("build the model from layers as the specification describes, without calling a sub-model "
              "inside another sub-model repeatedly." if nested else
              "build the model from layers as the specification describes."),
        diagnosis="graph_too_large")


@dataclass(frozen=True)
class Call:
    """One layer call found by the walk, before canonicalization. `inputs` are indices
    of earlier calls; `reads_input` counts model inputs read directly. `sources` is every
    input in the order the call takes them (canonical order for a commutative merge): an
    earlier call's index, or `-1 - k` for the model's k-th input, so a Concatenate of a
    layer's output and a model input keeps which comes first; `input_shapes` are their
    shapes, in the same order."""

    layer: Any
    inputs: tuple[int, ...]
    reads_input: int
    input_shape: tuple | None
    # The call's canonical (kind, params, name) entries, when the walk already read them.
    specs: tuple = ()
    sources: tuple[int, ...] = ()
    input_shapes: tuple = ()


def model_input_source(k: int) -> int:
    """How `Call.sources` writes the model's k-th input."""
    return -1 - k


@dataclass(frozen=True)
class Walk:
    calls: tuple[Call, ...]
    outputs: tuple[int, ...]
    reached: dict  # id -> layer: every layer the walk passed through


@dataclass(frozen=True)
class _Input:
    """A model input, as a source: which one (its position in `model.inputs`)."""

    position: int

_Key = tuple  # (id of the Keras node, ids of the nested-model calls around it)


@dataclass
class _Found:
    layer: Any
    tensors: list
    sources: list  # per input tensor: a _Key, an _Input or None (not a Keras tensor)


class _Walker:
    """Discovers every distinct call reachable from the outputs, then lists them in the
    canonical topological order. Two passes, both with explicit stacks."""

    def __init__(self, cap: int, inputs: list | None = None):
        self.cap = cap
        # The model's InputLayers by identity -> their position among the model's inputs.
        self.input_positions: dict[int, int] = {}
        for k, tensor in enumerate(inputs or ()):
            hist = _history(tensor)
            if hist is not None:
                self.input_positions.setdefault(id(hist[0]), k)
        self.found: dict[_Key, _Found] = {}
        self.reached: dict[int, Any] = {}
        self._canonical: dict[tuple[int, int | None], tuple] = {}
        self.nested = False  # whether any call was found inside a nested model

    def canonical(self, entry: _Found) -> tuple:
        """The call's canonical specs, read once per layer (and input rank): a layer
        called many times has one config."""
        shape = _shape(entry.tensors[0]) if entry.tensors else None
        rank = len(shape) if shape is not None else None
        key = (id(entry.layer), rank)
        if key not in self._canonical:
            self._canonical[key] = tuple(canonical(entry.layer, rank))
        return self._canonical[key]

    def locate(self, tensor: Any, frames: tuple) -> tuple[_Key | str | None, Any, Any, tuple]:
        """The call producing `tensor` seen from inside `frames` (nested-model calls):
        steps into nested models' outputs and back out of their inputs in a loop."""
        for _ in range(10_000):
            hist = _history(tensor)
            if hist is None:
                return None, None, None, frames
            layer, node_index, tensor_index = hist
            self.reached[id(layer)] = layer
            if _is_input_layer(layer):
                if not frames:
                    return _Input(self.input_positions.get(id(layer), 0)), None, None, frames
                model, outer_inputs, _ = frames[-1]
                inner = _model_inputs(model)
                position = next((i for i, t in enumerate(inner) if t is tensor), 0)
                if position >= len(outer_inputs):
                    return None, None, None, frames
                tensor, frames = outer_inputs[position], frames[:-1]
                continue
            nodes = _inbound_nodes(layer)
            if not 0 <= node_index < len(nodes):
                return None, None, None, frames
            node = nodes[node_index]
            inner_outputs = _model_outputs(layer) if _is_model(layer) else None
            if inner_outputs and 0 <= tensor_index < len(inner_outputs):
                frames = frames + ((layer, tuple(_node_inputs(node)), id(node)),)
                tensor = inner_outputs[tensor_index]
                continue
            return (id(node), tuple(f[2] for f in frames)), layer, node, frames
        return None, None, None, frames

    def discover(self, outputs: list) -> list:
        ends, stack = [], []
        for tensor in outputs:
            key, layer, node, frames = self.locate(tensor, ())
            ends.append(key)
            self._visit(key, layer, node, frames, stack)
        while stack:
            key, node, frames = stack.pop()
            entry = self.found[key]
            for tensor in _node_inputs(node):
                source, layer, inner_node, inner_frames = self.locate(tensor, frames)
                entry.sources.append(source)
                self._visit(source, layer, inner_node, inner_frames, stack)
        return ends

    def _visit(self, key: Any, layer: Any, node: Any, frames: tuple, stack: list) -> None:
        if not isinstance(key, tuple) or key in self.found:
            return
        if len(self.found) >= self.cap:
            raise _too_large(self.cap, self.nested)
        self.nested = self.nested or bool(frames)
        self.found[key] = _Found(layer, list(_node_inputs(node)), [])
        stack.append((key, node, frames))

    def ordered(self, ends: list) -> list[_Key]:
        """Post-order from the outputs, every merge's sources deepest first: the list's
        order never depends on the order a student wrote a merge's inputs in (whether
        that order matters is for the inputs' lists, see `_merge_order`)."""
        depth, signature = self._measure(ends)
        order, done, stack = [], set(), [(k, False) for k in reversed(ends) if isinstance(k, tuple)]
        while stack:
            key, expanded = stack.pop()
            if key in done:
                continue
            if expanded:
                done.add(key)
                order.append(key)
                continue
            stack.append((key, True))
            sources = [s for s in self.found[key].sources if isinstance(s, tuple)]
            sources.sort(key=lambda s: (-depth[s], signature[s]))
            stack += [(s, False) for s in reversed(sources) if s not in done]
        return order

    def _measure(self, ends: list) -> tuple[dict, dict]:
        """Longest path from the inputs to each call, and a digest of the structure
        feeding it (canonical layer settings; commutative merges' sources unordered), so
        two equally deep branches are ordered by what they compute."""
        depth: dict[_Key, int] = {}
        signature: dict[_Key, str] = {}
        stack = [(k, False) for k in ends if isinstance(k, tuple)]
        while stack:
            key, expanded = stack.pop()
            if key in depth:
                continue
            sources = [s for s in self.found[key].sources if isinstance(s, tuple)]
            if not expanded:
                stack.append((key, True))
                stack += [(s, False) for s in sources if s not in depth]
                continue
            kind = _kind(self.found[key].layer)
            depth[key] = 1 + max((depth[s] for s in sources), default=0)
            parts = [signature[s] if isinstance(s, tuple) else str(s) for s in self.found[key].sources]
            if kind in COMMUTATIVE:
                parts.sort()
            what = repr([(k, p) for k, p, _ in self.canonical(self.found[key])])
            signature[key] = hashlib.sha1(f"{what}({','.join(parts)})".encode()).hexdigest()[:16]
        return depth, signature


def _kind(layer: Any) -> str:
    return type(layer).__name__


def _chain_layers(model: Any, cap: int) -> list:
    """The layers of an unbuilt Sequential, nested Sequentials inlined, at most `cap`."""
    out, stack = [], [iter(model.layers)]
    while stack:
        layer = next(stack[-1], None)
        if layer is None:
            stack.pop()
        elif _is_model(layer):
            stack.append(iter(layer.layers))
        elif not _is_input_layer(layer):
            out.append(layer)
            if len(out) > cap:
                raise _too_large(cap, len(stack) > 1)
    return out


def walk(model: Any, *, cap: int = MAX_CALLS) -> Walk:
    """The model's layer calls in canonical topological order, or GraphTooLarge."""
    outputs = _model_outputs(model)
    if outputs is None:  # unbuilt Sequential: its layers are a chain by definition
        layers = _chain_layers(model, cap)
        calls = tuple(Call(l, (i - 1,) if i else (), 0 if i else 1, None, (), ((i - 1,) if i else (model_input_source(0),)))
                      for i, l in enumerate(layers))
        return Walk(calls, ((len(calls) - 1,) if calls else ()), {id(l): l for l in layers})
    walker = _Walker(cap, _model_inputs(model))
    ends = walker.discover(outputs)
    order = walker.ordered(ends)
    index = {key: i for i, key in enumerate(order)}
    calls = []
    for key in order:
        entry = walker.found[key]
        ordered = _merge_order(entry, index)
        inputs = tuple(index[s] for s, _ in ordered if isinstance(s, tuple))
        sources = tuple(index[s] if isinstance(s, tuple) else model_input_source(s.position)
                        for s, _ in ordered if isinstance(s, (tuple, _Input)))
        shapes = tuple(shape for s, shape in ordered if isinstance(s, (tuple, _Input)))
        calls.append(Call(entry.layer, inputs, sum(1 for s in entry.sources if isinstance(s, _Input)),
                          _shape(entry.tensors[0]) if entry.tensors else None, walker.canonical(entry),
                          sources, shapes))
    return Walk(tuple(calls), tuple(index[k] for k in ends if isinstance(k, tuple)), walker.reached)


def _merge_order(entry: _Found, index: dict) -> list[tuple[Any, tuple | None]]:
    """(source, its shape) per input. A commutative merge lists its sources in the
    canonical order (as visited, then model inputs by position); every other layer keeps
    the order the student wrote."""
    pairs = [(s, _shape(t)) for s, t in zip(entry.sources, entry.tensors)]
    if _kind(entry.layer) not in COMMUTATIVE:
        return pairs
    rank = lambda s: (0, index[s]) if isinstance(s, tuple) else (1, s.position if isinstance(s, _Input) else 0)  # noqa: E731
    return sorted(pairs, key=lambda pair: rank(pair[0]))


def disconnected(model: Any, reached: dict) -> tuple[str, ...]:
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
    # A model rebuilt from the sandbox lost them; the sandbox listed them (grader.frameworks.keras.rebuild).
    names += [n for n in getattr(model, "_grader_disconnected", ()) if n not in names]
    return tuple(names)
