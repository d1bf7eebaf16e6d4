"""Naming a layer so that a student can find it in their own code.

In order of preference: where the student created it ("the Conv2D created in cell 7,
line 14 (`X = Conv2D(F2, ...)`)"; "the second of the 4 Concatenate layers that
`upsampling_block` creates in ..." when one line made several layers, in calls or in a
loop), recorded by the sandbox; the name the student gave
it (`name='conv'`); its position among layers of its kind ("the second Conv2D").
Names Keras made up (`conv2d_6`, `re_lu_5`) are never shown: they appear nowhere in
the student's code, and they change with everything built before the model.
"""
from __future__ import annotations

import re
from typing import Sequence

from grader.checks.graph import LayerGraph, is_auto_name
from grader.checks.specs import framework_of, kind_noun

ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
_ACT_SUFFIX = "/activation"


def cap(text: str) -> str:
    """A sentence's first letter, unless the sentence starts with code (`nn.ReLU`,
    `torch.cat`, `x.relu()`), which keeps its spelling."""
    if "." in text.split(" ", 1)[0]:
        return text
    return text[:1].upper() + text[1:]


def join(items: Sequence[str]) -> str:
    items = list(items)
    if not items:
        return ""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def ordinal(n: int) -> str:
    """"first" for 0, ..., "tenth", then "11th", "22nd" (a ResNet50 has 16 blocks)."""
    if n < len(ORDINALS):
        return ORDINALS[n]
    k = n + 1
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def the(noun: str) -> str:
    """"the nn.ReLU", but "the addition (+)" stays as it is."""
    return noun if noun.startswith("the ") else f"the {noun}"


def nth(n: int, noun: str) -> str:
    """"the second Conv2D", "the second addition (+)"."""
    return f"the {ordinal(n)} {noun.removeprefix('the ')}"


def noun_in(g: LayerGraph, kind: str) -> str:
    """A kind of layer in the words of the framework graph `g` was written in: "Conv2D" for
    Keras, "nn.Conv2d" for PyTorch; for sentences about layers that are not one node."""
    return kind_noun(kind, framework_of(g.specs))


def which(g: LayerGraph, i: int) -> str:
    """"Conv2D", or "the second Conv2D" when the model has several (PyTorch: "nn.Conv2d")."""
    noun = g.specs[i].noun()
    n, count = g.kind_rank(i)
    if count == 1:
        return noun
    return nth(n, noun)


def which_at(g: LayerGraph, i: int) -> str:
    """`which`, with where the student created the layer when that is known."""
    where = g.nodes[i].location
    base = which(g, i)
    return f"{base} ({where.aside()})" if where else base


def who(g: LayerGraph, i: int) -> str:
    """The best handle on node `i` of a student's graph (see the module docstring)."""
    node, spec = g.nodes[i], g.specs[i]
    if spec.name.endswith(_ACT_SUFFIX):
        owner = _owner(g, i)
        return f"the activation='{spec.kind.lower()}' argument of {owner}"
    if node.location is not None:
        rank, count = g.call_rank(i)
        if count > 1:  # one line made several layers (a function called several times, a loop)
            fn = node.location.function
            made = f"that `{fn}` creates" if fn else "created"
            return f"the {ordinal(rank)} of the {count} {spec.noun().removeprefix('the ')} layers {made} " \
                   f"{node.location.text()}"
        return f"{the(spec.noun())} created {node.location.text()}"
    if not node.auto_named:
        return f"self.{spec.name} ({spec.noun()})" if spec.framework == "torch" else f"{spec.kind} {spec.name!r}"
    return which(g, i)


def _owner(g: LayerGraph, i: int) -> str:
    """The Conv a split-out activation belongs to (its only input)."""
    inputs = g.specs[i].inputs
    if inputs and g.specs[inputs[0]].name == g.specs[i].name[:-len(_ACT_SUFFIX)]:
        return who(g, inputs[0])
    name = g.specs[i].name[:-len(_ACT_SUFFIX)]
    return "its layer" if is_auto_name(name, g.nodes[i].origin, g.nodes[i].origin) else f"layer {name!r}"


_AUTO = re.compile(r"^[a-z][a-z0-9_]*?(_\d+)?$")
_KERAS_KINDS = {"conv1d": "Conv1D", "conv2d": "Conv2D", "conv3d": "Conv3D", "batchnormalization": "BatchNormalization",
                "relu": "ReLU", "activation": "activation", "dense": "Dense", "flatten": "Flatten",
                "maxpooling2d": "MaxPooling2D", "averagepooling2d": "AveragePooling2D", "zeropadding2d": "ZeroPadding2D",
                "dropout": "Dropout", "add": "Add", "concatenate": "Concatenate", "leakyrelu": "LeakyReLU",
                "softmax": "Softmax", "globalaveragepooling2d": "GlobalAveragePooling2D"}


def unlisted(name: str) -> str:
    """A layer known only by name (disconnected layers of a rebuilt model): its name
    when the student chose it, else "a BatchNormalization" read from Keras' naming."""
    base = re.sub(r"_\d+$", "", name).replace("_", "")
    if _AUTO.match(name) and base in _KERAS_KINDS:
        return f"a {_KERAS_KINDS[base]}" if base != "activation" else "an Activation"
    return repr(name)


__all__ = ["cap", "join", "ordinal", "nth", "noun_in", "the", "which", "which_at", "who", "unlisted", "ORDINALS"]
