"""An optimizer as the grading process sees it: data the child sent (class, hyperparameters,
parameters by shape), vetted here, and the check that compares it with what the exercise
asks (`optim.SGD(model.parameters(), momentum=0.9, nesterov=True)`).

Why data and not the object: the optimizer was built by student code in the sandbox; only
its description crosses (see `grader/frameworks/torch/optimizer.py`,
`grader/frameworks/keras/optimizer.py`). Nothing here imports a framework.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from grader.checks import CheckFailed

_MAX_GROUPS = 64
_MAX_PARAMS = 10_000


@dataclass(frozen=True)
class ParamGroup:
    hyperparameters: dict[str, Any]
    shapes: tuple[tuple[int, ...], ...]
    owners: tuple[str, ...]  # the notebook's name for each parameter ("model.0.weight"), "" if none


@dataclass(frozen=True)
class OptimizerValue:
    framework: str  # "torch" | "keras"
    class_name: str  # "SGD", "Adam"
    module: str
    defaults: dict[str, Any]
    groups: tuple[ParamGroup, ...]

    def get(self, key: str, default: Any = None) -> Any:
        """A hyperparameter as the first parameter group has it (what the constructor set),
        else the optimizer's defaults; Keras spells the learning rate `learning_rate`."""
        for source in ([self.groups[0].hyperparameters] if self.groups else []) + [self.defaults]:
            if key in source:
                return source[key]
        if key == "lr":
            return self.get("learning_rate", default)
        return default

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [s for g in self.groups for s in g.shapes]

    @property
    def owners(self) -> list[str]:
        return [o for g in self.groups for o in g.owners]

    def label(self) -> str:
        prefix = "optim." if self.framework == "torch" else "keras.optimizers."
        return prefix + self.class_name


def parse_optimizer(data: Any) -> OptimizerValue | None:
    """The child's description, checked field by field (it is untrusted); None when malformed."""
    if not isinstance(data, dict) or data.get("framework") not in ("torch", "keras"):
        return None
    groups_in = data.get("groups")
    if not isinstance(groups_in, list) or len(groups_in) > _MAX_GROUPS:
        return None
    groups = []
    for g in groups_in:
        if not isinstance(g, dict):
            return None
        shapes, owners = g.get("shapes", []), g.get("owners", [])
        if not (isinstance(shapes, list) and isinstance(owners, list) and len(shapes) <= _MAX_PARAMS
                and len(owners) == len(shapes)):
            return None
        if not all(isinstance(s, list) and all(type(d) is int for d in s) for s in shapes):
            return None
        groups.append(ParamGroup(_hyper(g.get("hyperparameters")), tuple(tuple(s) for s in shapes),
                                 tuple(str(o)[:200] for o in owners)))
    return OptimizerValue(str(data["framework"]), str(data.get("class", ""))[:100], str(data.get("module", ""))[:200],
                          _hyper(data.get("defaults")), tuple(groups))


def _hyper(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    return {str(k)[:100]: _plain(v) for k, v in list(value.items())[:64]}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and len(value) <= 16:
        return tuple(_plain(v) for v in value)
    return str(value)[:100]


def _same(found: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(found, bool):
        return found is expected or (isinstance(found, bool) and found == expected)
    if isinstance(expected, (int, float)) and isinstance(found, (int, float)):
        return math.isclose(float(found), float(expected), rel_tol=1e-6, abs_tol=1e-12)
    if isinstance(expected, (list, tuple)) and isinstance(found, (list, tuple)):
        return len(found) == len(expected) and all(_same(f, e) for f, e in zip(found, expected))
    return found == expected


def expect_optimizer(found: Any, *, name: str = "optimizer", cls: str | None = None, where: str = "",
                     parameters: list[tuple[int, ...]] | None = None, model_name: str = "model",
                     hints: dict[str, str] | None = None, **hyperparameters: Any) -> OptimizerValue:
    """`found` (what `submission.variable(name)` returned) is an optimizer of class `cls`
    with these hyperparameters, holding exactly `parameters` (the model's parameter shapes,
    in order). `hints` maps a hyperparameter to the sentence that says why it matters."""
    at = f" ({where})" if where else ""
    if found is None:
        raise CheckFailed(f"`{name}`{at} is still None: the optimizer is not built yet.",
                          hint=f"Assign the optimizer to `{name}`.", diagnosis="returned_none")
    if not isinstance(found, OptimizerValue):
        raise CheckFailed(f"`{name}`{at} is a {type(found).__name__}, not an optimizer.", diagnosis="not_an_optimizer")
    if cls is not None and found.class_name != cls:
        expected = ("optim." if found.framework == "torch" else "keras.optimizers.") + cls
        raise CheckFailed(f"`{name}`{at} is {found.label()}; the exercise asks for {expected}.",
                          diagnosis="wrong_optimizer")
    hints = hints or {}
    for key, expected in hyperparameters.items():
        value = found.get(key)
        if not _same(value, expected):
            raise CheckFailed(f"`{name}`{at} has {key}={value!r}; expected {key}={expected!r}.",
                              hint=hints.get(key, ""), diagnosis=f"wrong_hyperparameter:{key}")
    if parameters is not None:
        _expect_parameters(found, [tuple(p) for p in parameters], name, at, model_name)
    return found


def _expect_parameters(found: OptimizerValue, expected: list[tuple[int, ...]], name: str, at: str,
                       model_name: str) -> None:
    held = found.shapes
    if held == expected:
        return
    owned = [o for o in found.owners if o.startswith(model_name + ".")]
    if len(held) < len(expected):
        detail = f"{len(held)} parameter tensors, but `{model_name}` has {len(expected)}"
        why = "the parameters it does not hold are never updated by training"
    else:
        detail = f"{len(held)} parameter tensors, but `{model_name}` has {len(expected)}"
        why = "it updates tensors that are not this model's"
    if owned and len(owned) != len(held):
        detail += f" (only {len(owned)} of them are `{model_name}`'s)"
    raise CheckFailed(f"`{name}`{at} holds {detail}: {why}.",
                      hint=f"Build it from `{model_name}.parameters()`, after `{model_name}` is built.",
                      diagnosis="optimizer_parameters")
