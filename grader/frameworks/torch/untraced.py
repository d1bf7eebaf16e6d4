"""Grading a module `torch.fx` cannot trace (an `if` on a tensor's value in `forward`).

Without a graph, the module is run where it lives, in the sandbox child: the built-in
probe (`probe.TORCH_PROBE`) calls the student's function, runs the module on the test's
inputs with forward hooks on every leaf layer, and sends back the order in which its
layers were called and its outputs. The reference is run the same way here.

- Layer order: both call orders become chains of layer specs (the same canonical specs
  as the traced graph), compared by the architecture check's explanation. Hooks see
  layers only: a `F.relu` in `forward` is not a layer call, so it is not in the order
  (a ReLU written as `nn.ReLU()` is).
- Outputs: the reference's stateful layers (convolutions, BatchNorm, linear) are paired
  with the student's in call order, class by class; the reference's parameters and
  buffers go into the child as tensors keyed by the student's own paths, and the outputs
  the child computes with them are compared with the reference's.

Everything that comes back is data and is checked here before use.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from grader.checks import CheckFailed
from grader.checks.explain import explain_difference
from grader.checks.graph import GraphNode, LayerGraph, _fold_activations
from grader.checks.specs import LayerSpec
from grader.frameworks.torch.graph import _bias_before_batchnorm, _module_spec
from grader.frameworks.torch.probe import TORCH_PROBE
from grader.frameworks.torch.rebuild import PLANS, RebuiltModule

MAX_ORDER = 5000


@dataclass(frozen=True)
class HookedRun:
    """What a hooked run returned: layers in call order (path, class) and the outputs."""

    order: tuple[tuple[str, str], ...]
    outputs: tuple[np.ndarray, ...]


def hooked_run(submission: Any, name: str, inputs: np.ndarray, *, args: Sequence = (), kwargs: dict | None = None,
               state: dict | None = None, training: bool | None = None) -> HookedRun:
    """Run the student's `name(*args, **kwargs)`'s module on `inputs` in the sandbox, with
    `state` (key -> array) loaded first; CheckFailed when it does not return a module."""
    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in (state or {}).items()}
    value = submission.probe(TORCH_PROBE, name, list(args), dict(kwargs or {}), x, tensors or None, training)
    if not isinstance(value, dict):
        raise CheckFailed(f"Running `{name}`'s model in the sandbox gave no result the grader can read.",
                          diagnosis="model_call_failed")
    if "missing" in value:
        raise CheckFailed(f"`{name}` is not defined in your notebook.", diagnosis="missing")
    if "not_a_module" in value:
        raise CheckFailed(f"`{name}` returned a {str(value['not_a_module'])[:100]}, not a torch nn.Module.",
                          hint="return the model object itself.", diagnosis="not_a_model")
    order, outputs = value.get("order"), value.get("outputs")
    if not (isinstance(order, list) and len(order) <= MAX_ORDER and isinstance(outputs, list)
            and all(isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("class"), str)
                    for e in order)
            and all(isinstance(o, np.ndarray) for o in outputs)):
        raise CheckFailed(f"Running `{name}`'s model in the sandbox gave a malformed result.",
                          diagnosis="model_call_failed")
    return HookedRun(tuple((e["path"][:300], e["class"][:100]) for e in order), tuple(outputs))


def local_order(module: nn.Module, inputs: np.ndarray, training: bool | None = None) -> tuple[list, list]:
    """The reference's (path, layer) call order and outputs, run here (instructor code);
    its weights and mode are put back afterwards. A student kit's recorded reference
    answers from the order and outputs recorded at export (`grader.kit.torch_models`)."""
    if not isinstance(module, nn.Module) and hasattr(module, "hooked_order"):
        return module.hooked_order(inputs, training)
    paths = {id(m): p for p, m in module.named_modules()}
    order: list[tuple[str, nn.Module]] = []
    handles = [m.register_forward_hook(lambda sub, i, o: order.append((paths[id(sub)], sub)))
               for p, m in module.named_modules() if p and not m._modules]
    saved, mode = {k: v.detach().clone() for k, v in module.state_dict().items()}, module.training
    try:
        if training is not None:
            module.train(training)
        with torch.no_grad():
            out = module(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)))
    finally:
        for handle in handles:
            handle.remove()
        module.load_state_dict(saved)
        module.train(mode)
    outputs = list(out) if isinstance(out, (tuple, list)) else [out]
    return order, [o.detach().numpy() for o in outputs]


def chain_graph(layers: Sequence[nn.Module | None], names: Sequence[str]) -> LayerGraph:
    """Layers called one after another, as a chain graph of canonical specs."""
    nodes: list[GraphNode] = []
    for layer, path in zip(layers, names):
        spec = _spec_of(layer) if layer is not None else ("Unknown", (), path)
        if spec is None:
            continue
        kind, params, shown = spec
        previous = (len(nodes) - 1,) if nodes else ()
        nodes.append(GraphNode(LayerSpec(kind, params, path, previous, display=shown, framework="torch"), layer, None,
                               0 if nodes else 1, _class_name(layer), auto_named=path.replace(".", "").isdigit(),
                               sources=previous or (-1,)))
    folded, outputs = _fold_activations(_bias_before_batchnorm(nodes), (len(nodes) - 1,) if nodes else ())
    return LayerGraph(tuple(folded), outputs, ())


def _class_name(layer: Any) -> str:
    """A module's class, or a kit's recorded layer's (`grader.kit.torch_models`)."""
    if isinstance(layer, nn.Module):
        return type(layer).__name__
    return str(getattr(layer, "class_name", type(layer).__name__))


def _spec_of(layer: Any) -> Any:
    return _module_spec(layer) if isinstance(layer, nn.Module) else getattr(layer, "spec", None)


def _student_layers(student: RebuiltModule, run: HookedRun) -> list[nn.Module | None]:
    modules = dict(student.named_modules())
    return [modules.get(path) if cls in PLANS else None for path, cls in run.order]


# Layers hooks always see (they hold weights); other kinds are compared only when the
# student wrote them as modules too (an F.relu or torch.flatten is not a layer call).
_ALWAYS = frozenset({"Conv2d", "BatchNorm2d", "BatchNorm1d", "Linear"})
_NEVER = frozenset({"Flatten", "Identity"})


def _visible(pairs: list[tuple[str, nn.Module | None]], kinds: set[str]) -> list[tuple[str, nn.Module | None]]:
    return [(p, m) for p, m in pairs if _class_name(m) not in _NEVER
            and (_class_name(m) in _ALWAYS or _class_name(m) in kinds)]


def expect_layer_order_by_hooks(reference: nn.Module, student: RebuiltModule, run: HookedRun,
                                inputs: np.ndarray, *, exercise: str) -> None:
    """The architecture check on the layers' call order, for a module without a graph:
    layers with weights always, activations and pooling when the student wrote them as
    modules (hooks cannot see functions)."""
    order, _ = local_order(reference, inputs)
    theirs = list(zip([p for p, _ in run.order], _student_layers(student, run)))
    kinds = {type(m).__name__ for _, m in theirs}
    mine, theirs = _visible(order, kinds), _visible(theirs, kinds | {c for _, c in run.order})
    expected = chain_graph([m for _, m in mine], [p for p, _ in mine])
    found = chain_graph([m for _, m in theirs], [p for p, _ in theirs])
    failure = explain_difference(expected, found, exercise=exercise)
    if failure is not None:
        raise failure


_STATEFUL = (nn.Conv2d, nn.BatchNorm2d, nn.BatchNorm1d, nn.Linear)
_STATEFUL_NAMES = frozenset(c.__name__ for c in _STATEFUL)


def transplanted_state(reference_order: list, student: RebuiltModule, run: HookedRun) -> dict[str, np.ndarray]:
    """The reference's tensors keyed by the student's paths: stateful layers paired in
    call order, class by class; a layer whose shapes differ keeps the student's own."""
    theirs = [m for _, m in reference_order
              if isinstance(m, _STATEFUL) or (not isinstance(m, nn.Module) and _class_name(m) in _STATEFUL_NAMES)]
    modules = dict(student.named_modules())
    ours = [(p, modules[p]) for p, _ in run.order if isinstance(modules.get(p), _STATEFUL)]
    state: dict[str, np.ndarray] = {}
    seen: set[int] = set()
    pending: torch.Tensor | None = None  # a reference bias the student's last conv lacks
    for source, (path, target) in zip(theirs, ours):
        if isinstance(source, nn.Module):
            same = type(source) is type(target)
        else:  # a kit's recorded layer: by class name
            same = _class_name(source) == type(target).__name__
        if not same or id(target) in seen:
            continue
        seen.add(id(target))
        given = dict(source.state_dict())
        if isinstance(target, (nn.BatchNorm2d, nn.BatchNorm1d)) and pending is not None \
                and given.get("running_mean") is not None and given["running_mean"].shape == pending.shape:
            given["running_mean"] = given["running_mean"] - pending  # BatchNorm absorbs it (see outputs)
        pending = source.bias.detach() if isinstance(target, nn.Conv2d) and target.bias is None \
            and source.bias is not None else None
        for key, tensor in target.state_dict().items():
            value = given.get(key)
            if value is None and key == "bias":
                value = torch.zeros_like(tensor)  # a bias where the reference has none: BatchNorm cancels it
            if value is not None and value.shape == tensor.shape:
                state[f"{path}.{key}"] = value.detach().numpy().copy()
    return state


def expect_same_outputs_by_hooks(reference: nn.Module, student: RebuiltModule, submission: Any, name: str,
                                 inputs: np.ndarray, *, training: bool | None, args: Sequence = (),
                                 kwargs: dict | None = None, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """`expect_same_outputs` for a module without a graph: computed in the child with the
    reference's weights sent in as arrays."""
    from grader.checks.models import _compare
    order, expected = local_order(reference, inputs, training)
    first = hooked_run(submission, name, inputs, args=args, kwargs=kwargs, training=training)
    state = transplanted_state(order, student, first)
    found = hooked_run(submission, name, inputs, args=args, kwargs=kwargs, state=state, training=training).outputs
    if len(expected) != len(found):
        raise CheckFailed(f"Your model returns {len(found)} outputs; the reference returns {len(expected)}.",
                          diagnosis="wrong_output_count")
    for e, f in zip(expected, found):
        _compare(e, f, training=training, rtol=rtol, atol=atol, what="output")


__all__ = ["HookedRun", "chain_graph", "expect_layer_order_by_hooks", "expect_same_outputs_by_hooks",
           "hooked_run", "local_order", "transplanted_state"]
