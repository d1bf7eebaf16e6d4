"""What a graph whose every layer matched can still get wrong: which layers feed each
layer (and in which order, under the assignment's merge-order policy,
`grader.checks.merge_order`), which tensor is each output, and the further settings an
assignment asked to compare (`compare=("kernel_initializer",)`)."""
from __future__ import annotations

from grader.checks.comparison import Context as _Context, Problem
from grader.checks.merge_order import UNPAIRED, order_accepted, wanted_and_got
from grader.checks.naming import cap, join, noun_in, ordinal
from grader.checks.specs import COMMUTATIVE, setting, setting_text


def _source_name(ctx: _Context, i: int) -> str:
    """A student's layer, or a model input (`-1 - k`): "the model's second input" when
    the model has several (a block's tensor arguments, in the order the function takes
    them), "the model's input" otherwise."""
    if i >= 0:
        return ctx.result(i)
    inputs = {s for node in ctx.fnd.nodes for s in node.sources if s < 0}
    return "the model's input" if len(inputs) <= 1 else f"the model's {ordinal(-1 - i)} input"


def _order_problem_of_merge(ctx: _Context, e: int, f: int, wanted: list[int], got: list[int]) -> Problem:
    kind, noun = ctx.e[e].kind, ctx.f[f].noun()  # the merge as the student wrote it ("torch.cat")
    name = lambda i: _source_name(ctx, i)  # noqa: E731
    text = (f"{cap(ctx.found(f))} takes its inputs in another order: {', then '.join(name(i) for i in got)}; "
            f"expected {', then '.join(name(i) for i in wanted)}.")
    changes = ("its channels come in another order" if kind == "Concatenate" else "it computes something else")
    why = (f" {cap(noun)} keeps the order of its inputs: in another order {changes}, so every later layer reads "
           "something else; the specification's order is part of the architecture.")
    if ctx.merge_order == "either" and kind == "Concatenate":
        why += (f" Another order is accepted here only where a layer that mixes channels (such as "
                f"{noun_in(ctx.fnd, 'Conv2D')}) reads the result, which is not the case for this one.")
    return Problem(ctx.alignment.row_of_found(f), "wrong_input_order", text + why, text[:-1],
                   f"pass the inputs to {noun.removeprefix('the ')} in the order of the specification: "
                   f"{', then '.join(name(i) for i in wanted)}.")


def edge_problem(ctx: _Context) -> Problem | None:
    """With every layer matched, each must also read from the matching layers, in the
    order the merge policy asks for (`grader.checks.merge_order`)."""
    pairs = ctx.alignment.pairs
    for e, spec in enumerate(ctx.e):
        f = pairs[e]
        wanted, got = wanted_and_got(ctx.exp, e, ctx.fnd, f, pairs)
        if spec.kind in COMMUTATIVE:
            wanted, got = sorted(wanted), sorted(got)
        if wanted == got:
            continue
        if sorted(wanted) == sorted(got):
            if order_accepted(ctx.exp, e, ctx.fnd, f, pairs, ctx.merge_order):
                continue
            return _order_problem_of_merge(ctx, e, f, wanted, got)
        name = lambda i: _source_name(ctx, i) if i != UNPAIRED else "a layer your model does not have"  # noqa: E731
        text = (f"{cap(ctx.found(f))} takes its input from {join([name(i) for i in got] or ['nothing'])}; "
                f"expected from {join([name(i) for i in wanted] or ['nothing'])}.")
        why = " Which layers feed a layer decides what it computes, so the outputs differ."
        return Problem(ctx.alignment.row_of_found(f), "wrong_branching", text + why, text[:-1],
                       "connect the layers as in the specification.")
    return None


def _model_name(ctx: _Context) -> str:
    return f"the model {ctx.exercise} returns" if ctx.exercise else "your model"


def outputs_problem(ctx: _Context) -> Problem | None:
    """Each output must be the tensor the reference returns in that position: a block
    returning (pooled, pooled) instead of (pooled, skip) has every layer right and its
    second output wrong."""
    wanted = [ctx.alignment.pairs.get(o) for o in ctx.exp.outputs]
    got = list(ctx.fnd.outputs)
    model = _model_name(ctx)
    if len(wanted) != len(got):
        text = (f"{cap(model)} has {len(got)} output{'s' if len(got) != 1 else ''}; expected {len(wanted)}. "
                "Each value a function returns is one output, in order.")
        return Problem(0, "wrong_output_count", text, text.split(". ")[0],
                       f"return the {len(wanted)} values of the specification, in its order.")
    for k, (w, g) in enumerate(zip(wanted, got)):
        if w == g:
            continue
        which_out = f"Output {k + 1}" if len(got) > 1 else "The output"
        value = f" (the {ordinal(k)} value returned)" if len(got) > 1 else ""
        expected = ctx.result(w) if w is not None else "another layer"
        text = (f"{which_out} of {model}{value} is the result of {ctx.result(g)}; expected the result of "
                f"{expected}. Every layer is right, but another tensor is returned in that place, so whatever "
                "uses this output receives something else.")
        row = ctx.alignment.row_of_found(g)
        return Problem(row, "wrong_output", text, f"{which_out.lower()} is the result of {ctx.result(g)}",
                       f"return the result of {expected} as output {k + 1}." if len(got) > 1
                       else f"return the result of {expected}.")
    return None


_SETTING_WHY = {
    "initializer": ("The initializer sets the weights training starts from, which decides how well (and whether) "
                    "a deep network trains."),
    "regularizer": "A regularizer adds a penalty on the weights to the loss, which changes what training converges to.",
    "constraint": "A constraint limits the weights after every training step.",
}


def settings_problems(ctx: _Context) -> list[Problem]:
    """The settings an assignment asked to compare besides the canonical ones, for every
    matched pair of layers: `compare=("kernel_initializer",)` on every layer that has
    one, `("Conv2D.kernel_initializer",)` on the Conv2D layers only (every layer has an
    initializer, its default included: a Conv2DTranspose left at the default need not be
    graded with the Conv2Ds)."""
    out = []
    for e, f in sorted(ctx.alignment.pairs.items()):
        a, b = ctx.exp.nodes[e].layer, ctx.fnd.nodes[f].layer
        if a is None or b is None:
            continue
        for entry in ctx.compare:
            kind, _, key = entry.rpartition(".")
            if kind and ctx.e[e].kind != kind:
                continue
            want = setting(a, key)
            if want is None:
                continue
            got = setting(b, key)
            if got == want:
                continue
            subject = cap(ctx.found_which(f))
            text = f"{subject} has {key} {setting_text(got)}; expected {setting_text(want)}."
            why = next((w for suffix, w in _SETTING_WHY.items() if key.endswith(suffix)),
                       "The specification asks for this setting.")
            shown = setting_text(want)
            out.append(Problem(ctx.alignment.row_of_found(f), f"wrong_setting:{key}", f"{text} {why}", text[:-1],
                               f"pass {key}={shown.split(' (')[0]} to that layer."))
    return out


__all__ = ["edge_problem", "outputs_problem", "settings_problems"]
