"""How the architecture checks scale: the graph walk on nested models (1x against 4x
the unrolled size, and a model past the cap), and matching a real ResNet50.

    python bench/graph_bench.py                 # writes bench/out/graph_bench-*.json
    python bench/graph_bench.py --no-resnet     # only the nested-model growth

Nested models: each level calls the model inside it `calls` times, so a model of
`depth` levels is tiny as data but unrolls to calls**depth layer calls. The walk must
grow linearly with the unrolled size (the 4x ratio should be near 4) and refuse a model
past `grader.frameworks.keras.walk.MAX_CALLS` (8 levels x 5 calls: 390,625 calls) quickly.

ResNet50: `keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3),
classes=6)` (about 175 layers, 23.6 M parameters, no download), matched against an
independently built copy (passes) and against a copy with one Conv2D changed (fails
with one problem), and the reference's weights copied into the copy (the transplant
the output checks do). Target, reported and not asserted: well under a second each.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TARGET_RESNET_SECONDS = 1.0


def _timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def nested(depth: int, calls: int):
    import keras
    x = keras.Input((2,))
    inner = keras.Model(x, keras.layers.Dense(2)(x))
    for _ in range(depth):
        x = keras.Input((2,))
        y = x
        for _ in range(calls):
            y = inner(y)
        inner = keras.Model(x, y)
    return inner


def growth(calls: int, depth: int, repeat: int) -> dict:
    """Walk time at calls**depth and calls**(depth+1) unrolled calls (4x with calls=4)."""
    from grader.checks.architecture import layer_graph
    small, large = nested(depth, calls), nested(depth + 1, calls)
    t_small, g_small = _timed(lambda: layer_graph(small), repeat)
    t_large, g_large = _timed(lambda: layer_graph(large), repeat)
    return {"calls_per_level": calls, "small_nodes": len(g_small.nodes), "large_nodes": len(g_large.nodes),
            "small_seconds": t_small, "large_seconds": t_large, "ratio": t_large / t_small}


def bomb(depth: int, calls: int) -> dict:
    from grader.checks.architecture import GraphTooLarge, layer_graph
    from grader.checks.limits import MAX_CALLS
    model = nested(depth, calls)
    started = time.perf_counter()
    try:
        layer_graph(model)
        refused, diagnosis = False, ""
    except GraphTooLarge as err:
        refused, diagnosis = True, err.diagnosis
    return {"depth": depth, "calls_per_level": calls, "unrolled_calls": calls ** depth, "cap": MAX_CALLS,
            "refused": refused, "diagnosis": diagnosis, "seconds": time.perf_counter() - started}


def _one_conv_changed(model):
    """A copy of `model` whose second Conv2D has another kernel size ('same' padding,
    so every shape still fits): exactly one layer differs."""
    import keras
    config = model.get_config()
    convs = [layer for layer in config["layers"] if layer["class_name"] == "Conv2D"]
    convs[1]["config"]["kernel_size"] = [3, 3] if list(convs[1]["config"]["kernel_size"]) != [3, 3] else [1, 1]
    convs[1]["config"]["padding"] = "same"
    return keras.Model.from_config(config)


def resnet(repeat: int) -> dict:
    import keras
    from grader.checks import CheckFailed
    from grader.checks.architecture import expect_architecture, layer_graph
    from grader.checks.models import copy_weights
    started = time.perf_counter()
    reference = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=6)
    student = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=6)
    changed = _one_conv_changed(student)
    build = time.perf_counter() - started

    def verdict(found):
        try:
            expect_architecture(reference, found, exercise="ResNet50")
            return "passed", ""
        except CheckFailed as err:
            return "failed", err.diagnosis

    t_same, same = _timed(lambda: verdict(student), repeat)
    t_changed, other = _timed(lambda: verdict(changed), repeat)
    t_graph, graph = _timed(lambda: layer_graph(reference), repeat)
    t_copy, _ = _timed(lambda: copy_weights(reference, student), repeat)
    return {"nodes": len(graph.nodes), "params": int(reference.count_params()), "build_seconds": build,
            "graph_seconds": t_graph, "same_seconds": t_same, "same_verdict": same[0],
            "copy_weights_seconds": t_copy, "changed_seconds": t_changed, "changed_verdict": other[0], "changed_diagnosis": other[1],
            "target_seconds": TARGET_RESNET_SECONDS,
            "target_met": max(t_same, t_changed) < TARGET_RESNET_SECONDS}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4, help="calls per nesting level in the growth run")
    parser.add_argument("--depth", type=int, default=4, help="levels of the 1x model (the 4x one has one more)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (the median is kept)")
    parser.add_argument("--no-resnet", action="store_true", help="skip ResNet50 (it takes a few seconds to build)")
    parser.add_argument("--out", default=str(REPO / "bench" / "out"), help="folder for the JSON report")
    args = parser.parse_args(argv)
    report = {"growth": growth(args.calls, args.depth, args.repeat), "bomb": bomb(8, 5)}
    if not args.no_resnet:
        report["resnet50"] = resnet(args.repeat)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"graph_bench-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=2))
    g, b = report["growth"], report["bomb"]
    print(f"nested walk    1x ({g['small_nodes']} calls) {g['small_seconds'] * 1e3:8.1f} ms   "
          f"4x ({g['large_nodes']} calls) {g['large_seconds'] * 1e3:8.1f} ms   ratio {g['ratio']:.2f}")
    print(f"nested bomb    {b['unrolled_calls']:,} calls: {'refused' if b['refused'] else 'NOT refused'} "
          f"({b['diagnosis']}) in {b['seconds'] * 1e3:.1f} ms (cap {b['cap']:,})")
    if "resnet50" in report:
        r = report["resnet50"]
        print(f"ResNet50       {r['nodes']} nodes, {r['params']:,} params; graph {r['graph_seconds'] * 1e3:.0f} ms; "
              f"vs itself {r['same_seconds'] * 1e3:.0f} ms ({r['same_verdict']}); one Conv2D changed "
              f"{r['changed_seconds'] * 1e3:.0f} ms ({r['changed_verdict']}: {r['changed_diagnosis']}); "
              f"weight transplant {r['copy_weights_seconds'] * 1e3:.0f} ms")
    return report


if __name__ == "__main__":
    main()
