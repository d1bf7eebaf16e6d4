"""Explaining how a student's model differs from the reference's: one problem per
difference, each saying what was expected, what was found, where, and why it matters.

Structural problems (disconnected layers, branching) lead because they explain the rows
under them; otherwise the first aligned difference in model order leads and up to two
others follow, so a student fixes the root cause first. Layers are named as the student
can find them (`grader.checks.naming`), never by Keras' internal names, and in the words of
the framework the student wrote them in: a PyTorch student reads "nn.ReLU comes before
nn.BatchNorm2d", a Keras student "ReLU comes before BatchNormalization" (`LayerSpec.noun`,
`grader.checks.specs.kind_noun`).
"""
from __future__ import annotations

from typing import Sequence

from grader.checks import CheckFailed
from grader.checks.equivalence import align_graphs
from grader.checks.graph import LayerGraph
from grader.checks.comparison import Context as _Context, Problem
from grader.checks.matching import Row
from grader.checks.merge_order import check_merge_order
from grader.checks.naming import cap, join, the, unlisted, who
from grader.checks.residual import branch_name
from grader.checks.specs import (ACTIVATIONS, CONV, LayerSpec, dims, fmt, fmt_padding, framework_of, kind_noun,
                                 setting_word, stride_text)
from grader.checks.wiring import edge_problem, outputs_problem, settings_problems
from grader.results import Table

MISSING = "—"


def why_bn_first(framework: str = "") -> str:
    bn, conv = kind_noun("BatchNormalization", framework), kind_noun("Conv2D", framework)
    return (f"{bn} must follow {conv} directly: it normalizes the convolution's output "
            "before the nonlinearity cuts off its negative half.")


def hint_bn(framework: str = "") -> str:
    bn, conv, relu = (kind_noun(k, framework) for k in ("BatchNormalization", "Conv2D", "ReLU"))
    return f"put {bn} directly after each {conv} and the activation after it: {conv} -> {bn} -> {relu}."


# Keras' words, for callers that name no framework.
WHY_BN_FIRST = why_bn_first()
HINT_BN = hint_bn()
_WHY_ORDER = "The order of layers decides what each layer receives, so the model computes something else."


def _fw(ctx: _Context) -> str:
    """The student's framework ("" for Keras): every sentence uses its names."""
    return framework_of(ctx.fnd.specs) or framework_of(ctx.exp.specs)


def _kind(ctx: _Context, kind: str) -> str:
    return kind_noun(kind, _fw(ctx))


def _short_label(spec: LayerSpec) -> str:
    """Keras' BatchNormalization over the channels needs no settings to be found; a display
    (`nn.BatchNorm2d(16)`) is already short."""
    plain = spec.kind == "BatchNormalization" and spec.param("axis") == "channels" and not spec.display
    return spec.kind if plain else spec.label()


def _neighbours(ctx: _Context, start: int, stop: int) -> tuple[int | None, int | None]:
    """The student's own layers around a gap (node indices): sentences say where to add
    or remove a layer in terms of the model the student has in front of them."""
    rows = ctx.alignment.rows
    before = next((r.found for r in reversed(rows[:start]) if r.found is not None), None)
    after = next((r.found for r in rows[stop + 1:] if r.found is not None), None)
    return before, after


def _created(ctx: _Context, f: int | None) -> str:
    """", right after the Conv2D created in cell 3, line 12 (`...`)" when known."""
    where = ctx.fnd.nodes[f].location if f is not None else None
    return f", right after {the(ctx.f[f].noun())} created {where.text()}" if where else ""


def _purpose(spec: LayerSpec) -> str:
    act, units = spec.param("activation"), spec.param("units")
    if spec.kind == "Dense" and act == "sigmoid" and units == 1:
        return ": it turns the features into one probability per image"
    if spec.kind == "Dense" and act == "softmax":
        return f": it turns the features into a probability for each of the {units} classes"
    return ""


def _missing_name(ctx: _Context, e: int) -> str:
    """"BatchNormalization", "the second BatchNormalization" when it is not the only one,
    or "the shortcut branch's BatchNormalization" inside a residual block."""
    spec = ctx.e[e]
    if spec.name.endswith("/activation") and spec.inputs and not branch_name(ctx.exp, e):
        # A Conv's own activation: "the ReLU of the 12th Conv2D", whichever way it was written.
        return f"the {spec.kind} of {ctx.expected(spec.inputs[0])} (activation='{spec.kind.lower()}')"
    label, nth = _short_label(spec), ctx.expected(e)
    if nth == spec.noun():
        return label
    return nth if label == spec.noun() else f"{nth} ({label})"


def _missing_problem(ctx: _Context, start: int, stop: int) -> Problem:
    indices = [r.expected for r in ctx.alignment.rows[start:stop + 1]]
    specs = [ctx.e[e] for e in indices]
    raw = join([_missing_name(ctx, e) for e in indices])
    names = cap(raw)
    verb = "is" if len(specs) == 1 else "are"
    before_at, after_at = _neighbours(ctx, start, stop)
    before = ctx.f[before_at] if before_at is not None else None
    after = ctx.f[after_at] if after_at is not None else None
    diagnosis = "bn_missing" if any(s.kind == "BatchNormalization" for s in specs) else "missing_layer"
    if after is None and before is not None:
        last = ctx.e[ctx.exp.outputs[0]] if ctx.exp.outputs else specs[-1]
        text = (f"{names} {verb} missing at the end, after {before.noun()}{_created(ctx, before_at)}. "
                f"The model must end with {last.label()}{_purpose(last)}.")
        return Problem(start, diagnosis, text, f"{raw} {verb} missing at the end", f"add {raw} at the end.")
    where = (f"between {before.noun()} and {after.noun()}" if before and after
             else f"at the start, before {after.noun()}" if after else "")
    why = (" Without it the convolution's outputs are not normalized, so training is slower and less "
           "stable and the outputs differ from the specification." if diagnosis == "bn_missing"
           else " Every layer of the specification changes what the model computes.")
    place = f" {where}" if where else ""
    return Problem(start, diagnosis, f"{names} {verb} missing{place}{_created(ctx, before_at)}.{why}",
                   f"{raw} {verb} missing{place}",
                   hint_bn(_fw(ctx)) if diagnosis == "bn_missing" else f"add {raw} {where}.".replace(" .", "."))


def _extra_problem(ctx: _Context, start: int, stop: int) -> Problem:
    found = [r.found for r in ctx.alignment.rows[start:stop + 1]]
    specs = [ctx.f[f] for f in found]
    names = join([s.label() for s in specs])
    before_at, after_at = _neighbours(ctx, start, stop)
    where = (f"after {ctx.f[before_at].noun()}" if before_at is not None
             else f"at the start, before {ctx.f[after_at].noun()}" if after_at is not None else "")
    located = ctx.fnd.nodes[found[0]].location
    where += f" ({located.aside()})" if located else ""
    head = f"There is an extra layer {names}" if len(specs) == 1 else f"There are extra layers {names}"
    why = " Every extra layer changes what the model computes, so its outputs cannot match the specification."
    return Problem(start, "extra_layer", f"{head} {where}.{why}", f"{head[0].lower()}{head[1:]} {where}",
                   f"remove {names}.")


def _replaced_problem(ctx: _Context, k: int) -> Problem:
    row = ctx.alignment.rows[k]
    e, f = ctx.e[row.expected], ctx.f[row.found]
    text = f"Found {f.label()} where {e.label()} was expected."
    why = "A different kind of layer computes something else, so the outputs cannot match the specification."
    return Problem(k, "wrong_layer", f"{text} {why}", text[:-1], f"use {e.label()} there.")


_PARAM_WHY = {
    "filters": "The number of filters is the number of feature maps the layer produces; every later shape depends on it.",
    "kernel_size": "The kernel size sets how large a patch each filter looks at, and the output's size.",
    "strides": "The stride sets how far the window moves, and so the output's height and width.",
    "padding": "Padding decides whether the output keeps the input's height and width ('same') or shrinks ('valid').",
    "pool_size": "The pool size sets how much each pooling step shrinks the feature maps.",
    "units": "The number of units is the size of the layer's output.",
    "activation": ("The activation decides what the outputs mean: sigmoid gives a probability in [0, 1], "
                   "softmax probabilities that sum to 1."),
    "rate": "The dropout rate is the share of units dropped during training.",
}


# Settings recorded only when they differ from Keras' default; absent means this.
_DEFAULTS = {"use_bias": True, "center": True, "scale": True, "dilation_rate": 1, "groups": 1,
             "depth_multiplier": 1, "negative_slope": 0.0, "threshold": 0.0, "max_value": None, "axis": -1}


def _setting(spec: LayerSpec, key: str) -> object:
    return spec.param(key, _DEFAULTS.get(key))


def _phrase(kind: str, key: str, value: object, framework: str = "") -> tuple[str, str]:
    """(full phrase, short value) for one setting: ("16 filters", "16"); the argument's name,
    where one is quoted, as the student's framework spells it (`bias=False` in PyTorch)."""
    if key == "use_bias":
        return ("a bias", "a bias") if value else (f"no bias ({setting_word(key, framework)}=False)", "no bias")
    if value is None:
        return f"no {key}", f"no {key}"
    if key == "filters":
        return f"{value} filters", str(value)
    if key == "kernel_size":
        return f"a {dims(value)} kernel", dims(value)
    if key == "pool_size":
        return f"a {dims(value)} pool", dims(value)
    if key == "strides":
        return f"stride {stride_text(value)}", stride_text(value)
    if key == "padding" and kind.startswith("ZeroPadding"):
        return f"padding {fmt_padding(value)}", fmt_padding(value)
    if key == "padding":
        return f"padding '{value}'", f"'{value}'"
    if key == "units":
        return f"{value} units", str(value)
    if key == "activation":
        return ("no activation (linear)" if value == "linear" else f"activation {value}"), str(value)
    if key == "rate":
        return f"rate {fmt(value)}", fmt(value)
    word = setting_word(key, framework)
    return f"{word}={fmt(value)}", f"{word}={fmt(value)}"


def _bn_axis_problem(ctx: _Context, k: int) -> Problem:
    row = ctx.alignment.rows[k]
    node = ctx.fnd.nodes[row.found]
    axis, shape = node.spec.param("axis"), node.input_shape
    rank = len(shape) if shape else None
    words = {0: "the batch", 1: "the image rows", 2: "the image columns"} if rank == 4 else {0: "the batch"}
    word = f" ({words[axis]})" if isinstance(axis, int) and axis in words else ""
    label = f"axes {fmt(axis)}" if isinstance(axis, tuple) else f"axis {axis}"
    channel_axis = f"-1 or {rank - 1}" if rank else "-1"
    maps = f"each of the {shape[-1]} feature maps" if shape and shape[-1] else "each feature map"
    who = cap(ctx.found_which(row.found))
    text = f"{who} normalizes {label}{word}, not the channel axis ({channel_axis}): it must normalize {maps}."
    return Problem(k, "bn_wrong_axis", text, f"{who} normalizes {label}, not the channel axis",
                   f"use BatchNormalization(axis={rank - 1 if rank else -1}) (or the default axis=-1).")


def _changed_problem(ctx: _Context, k: int) -> Problem:
    row = ctx.alignment.rows[k]
    e, f = ctx.e[row.expected], ctx.f[row.found]
    if e.kind == "BatchNormalization" and e.param("axis") == "channels" and f.param("axis") != "channels":
        return _bn_axis_problem(ctx, k)
    keys = [key for key, _ in e.params + tuple(p for p in f.params if p[0] not in dict(e.params))]
    diffs = [key for key in dict.fromkeys(keys) if _setting(e, key) != _setting(f, key)]
    who = cap(ctx.found_which(row.found))
    fw = _fw(ctx)
    found_phrases = [_phrase(f.kind, key, _setting(f, key), fw)[0] for key in diffs]
    if len(diffs) == 1:
        wanted = _phrase(e.kind, diffs[0], _setting(e, diffs[0]), fw)[1]
    else:
        wanted = join([_phrase(e.kind, key, _setting(e, key), fw)[0] for key in diffs])
    text = f"{who} has {join(found_phrases)}; expected {wanted}."
    why = _PARAM_WHY.get(diffs[0], "Each layer setting changes what the model computes.")
    if f.kind.startswith("ZeroPadding"):
        why = "Zero padding sets how large the image is when the convolution sees it, and so every later shape."
    return Problem(k, f"wrong_params:{e.kind}", f"{text} {why}", text[:-1], f"make that layer {e.label()}.")


def _order_diagnosis(ctx: _Context, e: int) -> str:
    """How a BatchNormalization ended up out of place, from where the layers that
    should surround it are in the student's model."""
    spec, pairs = ctx.e[e], ctx.alignment.pairs
    if spec.kind != "BatchNormalization" or e not in pairs:
        return "wrong_order"
    here = pairs[e]
    convs = [pairs[s] for s in spec.inputs if CONV.match(ctx.e[s].kind) and s in pairs]
    if any(here < c for c in convs):
        return "bn_before_conv"
    acts = [pairs[c] for c in ctx.exp.consumers(e) if ctx.e[c].kind in ACTIVATIONS and c in pairs]
    return "relu_before_bn" if any(a < here for a in acts) else "wrong_order"


def _activation_before(ctx: _Context, e: int) -> str:
    """The activation the student put before BatchNormalization `e`, saying so when it is
    a Conv's own `activation=` argument (no separate layer to look for), and naming it as
    the student wrote it (`nn.ReLU`, `F.relu`)."""
    c = next(c for c in ctx.exp.consumers(e) if ctx.e[c].kind in ACTIVATIONS)
    at = ctx.alignment.pairs.get(c)
    if at is not None and ctx.f[at].name.endswith("/activation"):
        return f"{ctx.f[at].kind} ({who(ctx.fnd, at)})"
    return ctx.f[at].noun() if at is not None else _kind(ctx, ctx.e[c].kind)


def _found_noun(ctx: _Context, e: int) -> str:
    """The student's own name for the layer matched to expected layer `e`."""
    at = ctx.alignment.pairs.get(e)
    return ctx.f[at].noun() if at is not None else _kind(ctx, ctx.e[e].kind)


def _order_problem(ctx: _Context, k: int, e: int) -> Problem:
    diagnosis = _order_diagnosis(ctx, e)
    spec, fw = ctx.e[e], _fw(ctx)
    bn = _found_noun(ctx, e)
    if diagnosis == "bn_before_conv":
        conv = _found_noun(ctx, spec.inputs[0])
        text = (f"{bn} comes before {conv}. {bn} must follow {_kind(ctx, 'Conv2D')} directly: it normalizes the "
                "feature maps the convolution produces, not its input.")
        return Problem(k, diagnosis, text, f"{bn} comes before {conv}", hint_bn(fw))
    if diagnosis == "relu_before_bn":
        act = _activation_before(ctx, e)
        return Problem(k, diagnosis, f"{act} comes before {bn}; {why_bn_first(fw)}",
                       f"{act} comes before {bn}", hint_bn(fw))
    return _misplaced_problem(ctx, k, e)


def _misplaced_problem(ctx: _Context, k: int, e: int) -> Problem:
    """A layer that reads from another layer than expected, said from the graph (what
    feeds it), never from list positions, so the sentence cannot contradict itself."""
    spec, found_at = ctx.e[e], ctx.alignment.pairs.get(e)
    subject = ctx.found_which(found_at) if found_at is not None else ctx.expected(e)
    merge = spec.inputs[0] if spec.inputs and ctx.e[spec.inputs[0]].kind == "Add" else None
    merged_at = ctx.alignment.pairs.get(merge) if merge is not None else None
    if merged_at is not None and found_at is not None and found_at in ctx.fnd.ancestors(merged_at):
        kind, merged = ctx.e[merge].kind, the(_found_noun(ctx, merge))
        text = (f"{cap(subject)} comes before {merged}; expected right after it. The shortcut is added to the "
                "main path first, and the activation applies to the sum: activating the main path alone before "
                "adding changes what the block computes.")
        code = ("x = torch.relu(x + shortcut)" if _fw(ctx) == "torch"
                else f"X = Activation('relu')({kind}()([X, X_shortcut]))")
        return Problem(k, "merge_after_activation", text, f"{subject} comes before {merged}",
                       f"apply the activation to the result of {merged}: {code}.")
    feeds = ctx.f[found_at].inputs if found_at is not None else ()
    reads_input = found_at is not None and ctx.fnd.nodes[found_at].reads_input > 0
    where = (f"comes right after {ctx.f[feeds[0]].noun()}" if feeds
             else "reads the model's input" if reads_input else "is not connected where expected")
    wanted = f"right after {_found_noun(ctx, spec.inputs[0])}" if spec.inputs else "reading the model's input"
    same_kind = bool(feeds) and bool(spec.inputs) and ctx.f[feeds[0]].kind == ctx.e[spec.inputs[0]].kind
    if same_kind:  # the same kind of neighbour, another instance of it
        where = f"comes after another {ctx.f[feeds[0]].noun()}"
    text = f"{cap(subject)} {where}; expected {wanted}."
    return Problem(k, "wrong_order", f"{text} {_WHY_ORDER}", text[:-1], "reorder the layers as in the expected column.")


def _runs(rows: Sequence[Row], op: str) -> list[tuple[int, int]]:
    runs, k = [], 0
    while k < len(rows):
        if rows[k].op != op:
            k += 1
            continue
        start = k
        while k + 1 < len(rows) and rows[k + 1].op == op:
            k += 1
        runs.append((start, k))
        k += 1
    return runs


def _alignment_problems(ctx: _Context) -> list[Problem]:
    rows, out, done = ctx.alignment.rows, [], set()
    for start, stop in _runs(rows, "missing"):
        out.append(_missing_problem(ctx, start, stop))
    for start, stop in _runs(rows, "extra"):
        out.append(_extra_problem(ctx, start, stop))
    for k, row in enumerate(rows):
        if row.op == "changed":
            out.append(_changed_problem(ctx, k))
        elif row.op == "replaced":
            out.append(_replaced_problem(ctx, k))
        elif row.op in ("swapped", "moved") and row.expected is not None and row.expected not in done:
            group = _order_group(ctx, k)
            done.update(group)
            e = next((g for g in group if ctx.e[g].kind == "BatchNormalization"), group[0])
            out.append(_order_problem(ctx, min(k, ctx.alignment.row_of_found(ctx.alignment.pairs[e])), e))
    return sorted(out, key=lambda p: p.row)


def _order_group(ctx: _Context, k: int) -> list[int]:
    """The expected layers of one order problem: both layers of a swap, or the moved one."""
    rows = ctx.alignment.rows
    if rows[k].op == "swapped" and k + 1 < len(rows) and rows[k + 1].op == "swapped":
        return [rows[k].expected, rows[k + 1].expected]
    return [rows[k].expected]


def _disconnected_problem(ctx: _Context, exercise: str) -> Problem | None:
    names = ctx.fnd.disconnected
    if not names:
        return None
    if _fw(ctx) == "torch":
        return _uncalled_problem(ctx, exercise)
    located = ctx.fnd.located
    shown = [unlisted(n) + (f" ({located[n].aside()})" if n in located else "") for n in names[:6]]
    shown += [f"{len(names) - 6} more"] if len(names) > 6 else []
    model = f"the model {exercise} returns" if exercise else "the model"
    ends = f": {model} ends at {ctx.result(ctx.fnd.outputs[0])}" if ctx.fnd.outputs else ""
    verb = "was" if len(names) == 1 else "were"
    if shown[0].startswith("'"):  # a name the student chose
        subject = f"{'Layer' if len(names) == 1 else 'Layers'} {join(shown)}"
    else:  # "a Conv2D": Keras named it, so it is described instead
        subject = cap(join(shown))
    text = (f"{subject} {verb} created but never connected to the output{ends}. "
            "Keras keeps only the layers between the inputs and the outputs given to Model(), "
            "so these layers are not part of the model.")
    row = next((k for k, r in enumerate(ctx.alignment.rows) if r.op != "equal"), 0)
    return Problem(row, "disconnected_layers", text, f"{len(names)} layers are never connected to the output",
                   "use each layer's result: pass it to the layer that should read it (or return it, if it is "
                   "what your function returns); a result that nothing reads is not part of the model.")


def _uncalled_problem(ctx: _Context, exercise: str) -> Problem:
    """A PyTorch module's layer made in `__init__` that `forward` never calls (the torch
    adapter lists them as the graph's disconnected layers, by attribute path)."""
    names = ctx.fnd.disconnected
    shown = [f"self.{n}" for n in names[:6]] + ([f"{len(names) - 6} more"] if len(names) > 6 else [])
    model = f"{exercise}'s forward" if exercise else "forward"
    one = len(names) == 1
    text = (f"{'Layer' if one else 'Layers'} {join(shown)} {'is' if one else 'are'} created but never called: "
            f"{model} does not use {'it' if one else 'them'}, so {'it is' if one else 'they are'} not part of "
            "what the model computes.")
    row = next((k for k, r in enumerate(ctx.alignment.rows) if r.op != "equal"), 0)
    return Problem(row, "disconnected_layers", text, f"{len(names)} layers are never called in forward",
                   "call each layer in forward on the tensor it should read (x = self.layer(x)), or remove "
                   "the ones the model does not need.")


def _fork_description(g: LayerGraph, name=who) -> tuple[int | None, str]:
    """(node, sentence) for the first place where a graph stops being a chain. `name`
    names a node: as `who` does in the student's model, by its kind in the reference's
    (whose names mean nothing to the student)."""
    readers = g.input_readers()
    if len(readers) > 1:
        return readers[-1], f"the input feeds {len(readers)} layers ({join([name(g, r) for r in readers])})"
    for i, spec in enumerate(g.specs):
        if g.fan_in(i) > 1:
            sources = [name(g, s) for s in spec.inputs] + ["the input"] * g.nodes[i].reads_input
            return i, f"{name(g, i)} merges {g.fan_in(i)} paths (from {join(sources)})"
        if g.fan_out(i) > 1:
            users = [name(g, c) for c in g.consumers(i)] + ["the output"] * g.outputs.count(i)
            return i, f"{name(g, i)} feeds {g.fan_out(i)} layers ({join(users)})"
    if len(g.outputs) != 1:
        return None, f"the model has {len(g.outputs)} outputs"
    return None, "the model is not a single chain"


def _branching_problem(ctx: _Context) -> Problem | None:
    if ctx.exp.is_chain() == ctx.fnd.is_chain():
        return None
    call = "x = self.layer(x)" if _fw(ctx) == "torch" else "x = Layer(...)(x)"
    hint = f"build a single chain: pass each layer's output only to the next layer, {call}."
    why = " A branch changes which tensor each layer receives, so the model computes something else."
    if ctx.exp.is_chain():
        node, what = _fork_description(ctx.fnd)
        row = ctx.alignment.row_of_found(node) if node is not None else 0
        text = f"{cap(what)}, but in the expected model each layer feeds only the next one."
        return Problem(row, "wrong_branching", text + why, text[:-1], hint)
    node, what = _fork_description(ctx.exp, name=lambda g, i: _kind(ctx, g.specs[i].kind))
    row = ctx.alignment.row_of_expected(node) if node is not None else 0
    text = f"Your model is a single chain, but in the expected model {what}."
    return Problem(row, "wrong_branching", text + why, text[:-1], "connect the layers as in the specification.")


def _problems(ctx: _Context, exercise: str) -> list[Problem]:
    """Structural problems lead (they explain the rows that follow them); layers
    missing under a disconnected lead are that same problem, so not repeated. With
    every layer matched: connections, then outputs, then the extra settings asked for."""
    disconnected = _disconnected_problem(ctx, exercise)
    lead = disconnected or _branching_problem(ctx)
    rest = _alignment_problems(ctx)
    if disconnected:
        rest = [p for p in rest if p.diagnosis not in ("missing_layer", "bn_missing")]
    if lead is None and not rest:
        found = edge_problem(ctx) or outputs_problem(ctx)
        return [found] if found else settings_problems(ctx)
    return ([lead] if lead else []) + rest


# Longer tables show the rows around the first difference only.
MAX_TABLE_ROWS = 15
_BEFORE, _AFTER = 3, 8


def short_table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]], marked: int | None) -> Table:
    """The rows around the marked one when there are many (a U-Net has about 50 layers):
    the student needs the first difference and its neighbours, each row keeping its number,
    and a line saying how many rows are left out above and below."""
    rows = list(rows)
    if len(rows) <= MAX_TABLE_ROWS:
        return Table(headers=headers, rows=tuple(rows), marked=marked)
    at = marked or 0
    start, stop = max(0, at - _BEFORE), min(len(rows), at + _AFTER + 1)
    blank = ("",) * (len(headers) - 2)
    shown = rows[start:stop]
    if start:
        shown.insert(0, ("…", f"{start} rows above", *blank))
    if stop < len(rows):
        shown.append(("…", f"{len(rows) - stop} rows below", *blank))
    return Table(headers=headers, rows=tuple(shown),
                 marked=None if marked is None else marked - start + (1 if start else 0))


def _table(ctx: _Context, marked: int | None) -> Table:
    rows = [(str(k + 1), ctx.e[r.expected].label() if r.expected is not None else MISSING,
             ctx.f[r.found].label() if r.found is not None else MISSING)
            for k, r in enumerate(ctx.alignment.rows)]
    return short_table(("#", "expected", "found"), rows, marked)


def _mid_sentence(text: str) -> str:
    """"The second Conv2D has..." reads "the second Conv2D has..." after "Also:"."""
    return text[0].lower() + text[1:] if text.startswith(("The ", "A ", "An ")) else text


def _message(problems: Sequence[Problem]) -> str:
    lead, others = problems[0], problems[1:]
    if not others:
        return lead.text
    also = "; ".join(_mid_sentence(p.short) for p in others[:2])
    more = f"; and {len(others) - 2} more" if len(others) > 2 else ""
    return f"{lead.text} Also: {also}{more}."


def explain_difference(exp: LayerGraph, fnd: LayerGraph, *, exercise: str, merge_order: str = "fixed",
                       compare: Sequence[str] = ()) -> CheckFailed | None:
    """The verdict on two graphs: None when they compute the same, else the failure
    to raise, its lead problem first and up to two others listed after it. Layers are
    the same when they compute the same at the graphs' shapes (`grader.checks.equivalence`);
    `merge_order` and `compare` as in `grader.checks.architecture.expect_architecture`."""
    alignment = align_graphs(exp, fnd)
    ctx = _Context(exp, fnd, alignment, check_merge_order(merge_order), tuple(compare), exercise)
    problems = _problems(ctx, exercise)
    if not problems:
        return None
    lead = problems[0]
    return CheckFailed(_message(problems), hint=lead.hint, table=_table(ctx, lead.row), diagnosis=lead.diagnosis)


__all__ = ["MISSING", "HINT_BN", "MAX_TABLE_ROWS", "WHY_BN_FIRST", "Problem", "explain_difference", "hint_bn",
           "short_table", "why_bn_first"]
