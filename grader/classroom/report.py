"""The class report: what a whole class got right and wrong, read from the gradebook.

`grader report results/` writes results/report.html, one self-contained file (plots are
PNG images inside it as data: URIs, no script, no network), so it can be mailed, archived
or opened from a course drive years later. It shows:

* the distribution of total scores and the pass rate of each test;
* the most common mistakes per exercise, counted in students, from the checks'
  `diagnosis` labels, each with a phrase a teaching assistant can act on;
* the slowest submissions (where grading time goes);
* clusters of submissions whose graded code is identical or nearly so once comments,
  docstrings, layout and local variable names are set aside: a prompt to look, never a
  verdict (short exercises have few ways to be right).

The code it compares was normalized at grading time (grader.classroom.codeshape, from the
program grading already extracted) and stored in the gradebook: the report never needs
the submissions themselves.
"""
from __future__ import annotations

import ast
import base64
import difflib
import html
import io
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.classroom.codeshape import normalize_source
from grader.classroom.names import printable
from grader.classroom.gradebook import Gradebook, Row, StudentGrade


_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d*)?(?:e[-+]?\d+)?|\S")
# Below this many tokens, code is too short for likeness to mean anything (`return None`).
MIN_TOKENS = 12
DEFAULT_THRESHOLD = 0.9


def tokens(normalized: str) -> list[str]:
    return _TOKEN.findall(normalized)


def similarity(a: list[str], b: list[str]) -> float:
    """difflib's ratio over token sequences: 2 * matching tokens / all tokens. Order counts
    (swapping two layers is a difference), which set-based measures such as shingle Jaccard
    miss when the moved pieces look alike."""
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


@dataclass
class Cluster:
    exercise: str
    members: list[tuple[str, str]]  # (student_id, submission)
    identical: bool  # one normalized text; otherwise near-identical
    similarity: float  # the lowest similarity that joined two of its texts (1.0 when identical)
    code: str  # the normalized code most members share
    variants: int
    largest: int = 0  # members whose code is exactly `code`
    reference: str = ""
    groups: list[list[tuple[str, str]]] = field(default_factory=list)  # members by identical code, largest first  # "identical" or "near" when the reference solution is in the cluster
    scores: list[float] = field(default_factory=list)


def cluster_code(entries: list[tuple[str, str, str]], *, threshold: float = DEFAULT_THRESHOLD,
                 reference: str = "", exercise: str = "") -> list[Cluster]:
    """Group (student_id, submission, normalized) of one exercise into clusters of two or
    more students whose code is identical, or similar (`similarity` >= `threshold`, joined
    transitively). Identical texts are grouped first, so the pairwise pass runs over
    distinct texts only, and difflib's cheap upper bounds skip most pairs."""
    by_text: dict[str, list[tuple[str, str]]] = {}
    for student, submission, text in entries:
        if text and len(tokens(text)) >= MIN_TOKENS:
            by_text.setdefault(text, []).append((student, submission))
    texts = list(by_text)
    if reference and len(tokens(reference)) >= MIN_TOKENS and reference not in by_text:
        texts.append(reference)  # joins clusters as a member without students
    seqs = [tokens(t) for t in texts]
    parent = list(range(len(texts)))
    weakest = [1.0] * len(texts)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = sorted(range(len(texts)), key=lambda i: len(seqs[i]))
    for position, i in enumerate(order):
        matcher = difflib.SequenceMatcher(None, autojunk=False)
        matcher.set_seq2(seqs[i])  # difflib caches what it learns about the second sequence
        for j in order[position + 1:]:
            if 2 * len(seqs[i]) < threshold * (len(seqs[i]) + len(seqs[j])):
                break  # longer ones only lower this length bound on the ratio
            matcher.set_seq1(seqs[j])
            if matcher.quick_ratio() < threshold:
                continue
            ratio = matcher.ratio()
            if ratio >= threshold:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[ri] = rj
                    weakest[rj] = min(weakest[rj], weakest[ri], ratio)
                else:
                    weakest[ri] = min(weakest[ri], ratio)
    groups: dict[int, list[int]] = {}
    for i in range(len(texts)):
        groups.setdefault(find(i), []).append(i)
    clusters = []
    for root, members in groups.items():
        people = [m for i in members for m in by_text.get(texts[i], [])]
        if len({student for student, _ in people}) < 2:
            continue
        main = max((i for i in members if texts[i] in by_text), key=lambda i: len(by_text[texts[i]]))
        ref = ""
        if reference and any(texts[i] == reference for i in members):
            ref = "identical" if reference in by_text else "near"
        distinct = [i for i in members if texts[i] in by_text]
        clusters.append(Cluster(exercise, sorted(people), identical=len(distinct) == 1,
                                similarity=1.0 if len(distinct) == 1 else round(weakest[root], 3),
                                code=texts[main], variants=len(distinct), largest=len(by_text[texts[main]]),
                                reference=ref,
                                groups=sorted((sorted(by_text[texts[i]]) for i in distinct), key=lambda g: (-len(g), g))))
    return sorted(clusters, key=lambda c: (-len(c.members), c.members))


def reference_sources(reference: Path, exercises: list[str]) -> dict[str, str]:
    """Each exercise's reference solution, normalized like the students' code, so a cluster
    that is the reference itself (a leaked solution, or simply the one obvious answer) says so."""
    try:
        text = Path(reference).read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return {}
    out = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in exercises:
            segment = ast.get_source_segment(text, node)
            if segment:
                out[node.name] = normalize_source(segment)
    return out


# ---------------------------------------------------------------- what each diagnosis means

# A phrase per `TestResult.diagnosis`, worded as the mistake a teaching assistant would name
# in class. Labels not listed here are shown with their underscores as spaces.
PHRASES = {
    # architecture
    "relu_before_bn": "ReLU before BatchNormalization",
    "bn_missing": "BatchNormalization missing",
    "bn_before_conv": "BatchNormalization before the convolution",
    "bn_not_after_conv": "BatchNormalization not directly after a Conv2D",
    "bn_wrong_axis": "BatchNormalization over the wrong axis",
    "missing_layer": "a layer missing",
    "extra_layer": "an extra layer",
    "wrong_layer": "a wrong layer type",
    "wrong_order": "layers in the wrong order",
    "wrong_branching": "layers connected wrongly",
    "disconnected_layers": "layers not connected to the output",
    "architecture_mismatch": "an architecture unlike the specification",
    "weight_shape_mismatch": "weights of the wrong shape",
    "model_call_failed": "the model cannot be called on an input",
    "wrong_output_shape": "output of the wrong shape",
    "wrong_output_count": "more than one output",
    "outputs_differ_training": "outputs differ in training mode",
    "outputs_differ_inference": "outputs differ at inference",
    "returned_none": "returned None instead of a model",
    "not_a_model": "did not return a Keras model",
    "model_rejected": "a model the grader refuses (Lambda or custom layers)",
    # batch normalization
    "eps_outside_sqrt": "eps added outside the square root",
    "no_eps": "eps left out",
    "sample_var": "sample variance (ddof=1) instead of population variance",
    "no_sqrt": "divided by the variance instead of its square root",
    "no_gamma_beta": "gamma and beta not applied",
    "gamma_beta_swapped": "gamma and beta swapped",
    "inference_stats": "moving statistics instead of the batch's",
    "wrong_axis": "statistics over the wrong axes",
    # standardization
    "test_stats_leak": "X_test standardized with its own statistics (test-set leak)",
    "swapped_outputs": "outputs returned in the wrong order",
    "sample_std": "sample standard deviation (ddof=1)",
    "no_std_division": "not divided by the standard deviation",
    "scalar_stats": "one mean and std for all channels",
    "per_image_stats": "statistics per image instead of over the training set",
    "wrong_axis_stats": "statistics over the wrong axes",
    "min_max": "min-max scaling instead of standardization",
    "divide_255_only": "only divided by 255",
    # arrays
    "wrong_values": "wrong values (no known mistake matches)",
    "wrong_return": "wrong return value",
    "wrong_shape": "wrong shape",
    "wrong_dtype": "wrong dtype",
    "not_an_array": "not an array",
    "modified_input": "input arrays modified in place",
    # how the code behaved
    "not_implemented": "not attempted (still raises NotImplementedError)",
    "raised": "the code raised an exception",
    "missing": "function not found in the notebook",
    "timeout": "timed out",
    "sandbox": "crashed its sandbox",
    "grader_error": "a grader error (not the student's fault)",
}


NOT_ATTEMPTED = ("not_implemented", "missing")


def phrase(diagnosis: str, framework: str = "keras") -> str:
    """The mistake in the words of the students' framework: a PyTorch class reads
    "nn.ReLU before nn.BatchNorm2d", the names its notebooks and feedback use."""
    if diagnosis in PHRASES:
        text = PHRASES[diagnosis]
    elif diagnosis.startswith("wrong_params:"):
        text = f"wrong settings of a {diagnosis.split(':', 1)[1]} layer"
    else:
        text = diagnosis.replace("_", " ")
    if framework == "torch":
        from grader.checks.specs import kind_noun
        text = re.sub(r"\b(BatchNormalization|Conv2D|ReLU)\b", lambda m: kind_noun(m.group(1), "torch"), text)
        text = text.replace("a Keras model", "a torch nn.Module")
    return text


# ---------------------------------------------------------------- the numbers

@dataclass
class Mistake:
    diagnosis: str
    phrase: str
    students: list[str]


@dataclass
class TestRate:
    exercise: str
    name: str
    passed: int
    total: int
    points: float
    max_points: float

    @property
    def title(self) -> str:
        return f"{self.exercise} · {self.name}" if self.exercise else self.name

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


@dataclass
class ClassReport:
    assignment: str
    title: str
    generated_at: str
    students: list[StudentGrade]
    max_total: float
    rates: list[TestRate]
    mistakes: dict[str, list[Mistake]]
    slowest: list[tuple[str, Row]]
    clusters: dict[str, list[Cluster]]
    threshold: float
    framework: str = "keras"

    @property
    def graded(self) -> list[StudentGrade]:
        return [s for s in self.students if s.row is not None and s.row.graded]

    @property
    def totals(self) -> list[float]:
        return [s.row.score for s in self.graded]


def build_report(book: Gradebook, *, threshold: float = DEFAULT_THRESHOLD, top: int = 10) -> ClassReport:
    identities = book.identities()
    students = book.students(identities)
    chosen = {s.row.submission: s.student_id for s in students if s.row is not None and s.row.graded}
    exercises = book.exercises
    maxima = book.exercise_max()
    framework = book.meta("framework") or "keras"  # a gradebook from before the key: Keras

    rates: dict[tuple[str, str], TestRate] = {}
    mistakes: dict[str, dict[str, set[str]]] = {}
    not_attempted: dict[str, set[str]] = {}  # exercise -> submissions still holding the template
    for submission, exercise, name, status, score, max_score, diagnosis, _ in book.tests():
        if submission not in chosen:
            continue
        rate = rates.setdefault((exercise, name), TestRate(exercise, name, 0, 0, 0.0, 0.0))
        rate.total += 1
        rate.passed += status == "passed"
        rate.points += score
        rate.max_points += max_score
        if diagnosis in NOT_ATTEMPTED:
            not_attempted.setdefault(exercise, set()).add(submission)
        if status != "passed" and diagnosis:
            mistakes.setdefault(exercise, {}).setdefault(diagnosis, set()).add(chosen[submission])
    order = {e: i for i, e in enumerate(exercises)}
    ordered_rates = sorted(rates.values(), key=lambda r: (order.get(r.exercise, len(order)), r.exercise))
    mistake_lists = {  # most students first; not attempting an exercise is not a mistake in it: last
        ex: sorted((Mistake(d, phrase(d, framework), sorted(s)) for d, s in per.items()),
                   key=lambda m: (m.diagnosis in NOT_ATTEMPTED, -len(m.students), m.diagnosis))
        for ex, per in sorted(mistakes.items(), key=lambda kv: order.get(kv[0], len(order)))}

    rows = book.rows()
    slowest = sorted(rows, key=lambda r: -r.execution_time)[:top]
    slow = [(identities.student_id(r.student_key), r) for r in slowest]

    references = reference_sources(Path(book.meta("reference") or ""), exercises)
    per_exercise: dict[str, list[tuple[str, str, str]]] = {}
    for submission, exercise, _, normalized in book.code():
        if submission in chosen and submission not in not_attempted.get(exercise, set()):
            per_exercise.setdefault(exercise, []).append((chosen[submission], submission, normalized))
    scores = book.exercise_scores()
    clusters = {}
    for exercise in sorted(per_exercise, key=lambda e: order.get(e, len(order))):
        found = cluster_code(per_exercise[exercise], threshold=threshold,
                             reference=references.get(exercise, ""), exercise=exercise)
        for c in found:
            c.scores = [scores.get(sub, {}).get(exercise, (0.0, 0.0))[0] for _, sub in c.members]
        if found:
            clusters[exercise] = found
    max_total = round(sum(maxima.get(e, 0.0) for e in exercises), 6)
    return ClassReport(book.assignment, book.meta("title") or book.assignment, time.strftime("%Y-%m-%d %H:%M"),
                       students, max_total, ordered_rates, mistake_lists, slow, clusters, threshold, framework)


# ---------------------------------------------------------------- plots

def _png(figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def score_histogram(totals: list[float], max_total: float) -> str:
    """One bar per point when the scale is small, so every possible total is visible."""
    from matplotlib.figure import Figure
    figure = Figure(figsize=(7, 3.2))
    ax = figure.add_subplot()
    top = max([max_total, *totals, 1.0])
    if top <= 40:
        bins = [b - 0.5 for b in range(0, int(top) + 2)]
    else:
        bins = 20
    ax.hist(totals, bins=bins, color="#3b7dd8", edgecolor="white")
    ax.set_xlabel(f"total points (out of {max_total:g})")
    ax.set_ylabel("students")
    ax.set_xlim(-0.5, top + 0.5)
    ax.yaxis.get_major_locator().set_params(integer=True)
    if totals:
        mean = statistics.fmean(totals)
        ax.axvline(mean, color="#d83b3b", linestyle="--", linewidth=1)
        ax.text(mean, ax.get_ylim()[1] * 0.95, f" mean {mean:.1f}", color="#d83b3b", va="top")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def pass_rate_chart(rates: list[TestRate]) -> str:
    from matplotlib.figure import Figure
    height = max(2.0, 0.38 * len(rates) + 0.8)
    figure = Figure(figsize=(7, height))
    ax = figure.add_subplot()
    labels = [r.title for r in rates][::-1]
    values = [100 * r.rate for r in rates][::-1]
    colors = ["#2e9e5b" if v >= 80 else "#e0a030" if v >= 50 else "#d83b3b" for v in values]
    ax.barh(range(len(values)), values, color=colors)
    ax.set_yticks(range(len(values)), labels)
    ax.set_xlim(0, 100)
    ax.set_xlabel("students passing (%)")
    for y, v in enumerate(values):
        ax.text(min(v + 1, 92), y, f"{v:.0f}%", va="center", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(figure)


# ---------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:64rem;
     padding:0 1rem;color:#1d2330;line-height:1.45}
h1{margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #d5dae3;padding-bottom:.2rem}
.sub{color:#5b6475}
.cards{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}
.card{border:1px solid #d5dae3;border-radius:.5rem;padding:.6rem 1rem;min-width:8rem}
.card b{display:block;font-size:1.4rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}
th,td{border-bottom:1px solid #e4e7ee;padding:.3rem .6rem;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto}
pre{background:#f5f7fa;border:1px solid #e4e7ee;border-radius:.3rem;padding:.6rem;overflow:auto;
    font-size:.82rem}
details summary{cursor:pointer}
ul.plain{list-style:none;padding-left:0}
.tag{display:inline-block;border-radius:.3rem;padding:0 .35rem;font-size:.8rem;background:#eef1f6}
.warn{background:#fde9e9}
"""


def _e(value) -> str:
    """Escaped for HTML, with control characters in students' file names shown as escapes."""
    return html.escape(printable(value, keep="\n\t"), quote=True)


def _who(student: str, submission: str) -> str:
    return f"{_e(student)} <span class=sub>({_e(submission)})</span>"


def render_report(report: ClassReport) -> str:
    graded, totals = report.graded, report.totals
    ungraded = [s for s in report.students if s.row is not None and not s.row.graded]
    missing = [s for s in report.students if s.row is None]
    parts = [
        "<!DOCTYPE html>", "<html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>Class report · {_e(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(report.title)}</h1>",
        f"<p class=sub>Assignment <code>{_e(report.assignment)}</code> · class report generated "
        f"{_e(report.generated_at)}</p>",
        "<div class=cards>",
        f"<div class=card>students<b>{len(report.students)}</b></div>",
        f"<div class=card>graded<b>{len(graded)}</b></div>",
        f"<div class=card>not graded<b>{len(ungraded)}</b></div>",
    ]
    if missing:
        parts.append(f"<div class=card>no submission<b>{len(missing)}</b></div>")
    if totals:
        parts += [f"<div class=card>mean<b>{statistics.fmean(totals):.1f} / {report.max_total:g}</b></div>",
                  f"<div class=card>median<b>{statistics.median(totals):g}</b></div>"]
    parts.append("</div>")

    parts.append("<h2 id=scores>Score distribution</h2>")
    if totals:
        parts.append(f"<img alt='Histogram of total scores' src='{score_histogram(totals, report.max_total)}'>")
    else:
        parts.append("<p>No submission was graded yet.</p>")

    parts.append("<h2 id=tests>Pass rate per test</h2>")
    if report.rates:
        parts.append(f"<img alt='Pass rate per test' src='{pass_rate_chart(report.rates)}'>")
        parts.append("<table><tr><th>test</th><th class=num>passed</th><th class=num>rate</th>"
                     "<th class=num>mean points</th></tr>")
        for r in report.rates:
            mean = r.points / r.total if r.total else 0.0
            parts.append(f"<tr><td>{_e(r.title)}</td><td class=num>{r.passed} / {r.total}</td>"
                         f"<td class=num>{100 * r.rate:.0f}%</td>"
                         f"<td class=num>{mean:.2f} / {r.max_points / max(r.total, 1):g}</td></tr>")
        parts.append("</table>")

    parts.append("<h2 id=mistakes>Most common mistakes</h2>")
    if not report.mistakes:
        parts.append("<p>No diagnosed mistakes.</p>")
    for exercise, found in report.mistakes.items():
        parts.append(f"<h3><code>{_e(exercise)}</code></h3><ul class=plain>")
        for m in found:
            n = len(m.students)
            parts.append(f"<li><details><summary><b>{_e(m.phrase)}</b>: {n} student{'s' * (n != 1)} "
                         f"<span class=tag>{_e(m.diagnosis)}</span></summary>"
                         f"<p class=sub>{', '.join(_e(s) for s in m.students)}</p></details></li>")
        parts.append("</ul>")

    parts.append("<h2 id=slowest>Slowest submissions</h2>")
    if report.slowest:
        parts.append("<table><tr><th>student</th><th class=num>grading time</th><th class=num>with overhead</th>"
                     "<th>status</th><th>graded by</th></tr>")
        warm = False
        for student, row in report.slowest:
            status = f"{row.score:g} / {row.max_score:g}" if row.graded else "not graded"
            first = " <span class=tag>first†</span>" if row.process_order == 1 else ""
            warm = warm or bool(first)
            parts.append(f"<tr><td>{_who(student, row.submission)}{first}</td>"
                         f"<td class=num>{row.execution_time:.2f} s</td><td class=num>{row.wall_time:.2f} s</td>"
                         f"<td>{_e(status)}</td><td>{_e(row.host)}</td></tr>")
        parts.append("</table>")
        if warm:
            parts.append("<p class=sub>† the first submission its grading process graded: its time includes "
                         f"{'torch' if report.framework == 'torch' else 'TensorFlow'}'s one-off warm-up, not only "
                         "this student's code.</p>")

    parts.append("<h2 id=similar>Identical or near-identical code</h2>")
    parts.append(f"<p class=sub>Each exercise's graded function, compared after removing comments, docstrings "
                 f"and layout and renaming local variables; near-identical means a token-sequence similarity "
                 f"(difflib ratio) ≥ {report.threshold:g}. Unattempted templates and code shorter than "
                 f"{MIN_TOKENS} tokens are left out. Short exercises have few right answers: look before "
                 f"you conclude anything.</p>")
    if not report.clusters:
        parts.append("<p>No two students share code.</p>")
    for exercise, found in report.clusters.items():
        parts.append(f"<h3><code>{_e(exercise)}</code></h3>")
        for c in found:
            kind = "identical" if c.identical else (
                f"near-identical ({c.variants} variants, similarity ≥ {c.similarity:g}"
                + (f"; {c.largest} of them identical)" if c.largest > 1 else ")"))
            ref = {"identical": " · <span class='tag warn'>identical to the reference solution</span>",
                   "near": " · <span class='tag warn'>close to the reference solution</span>"}.get(c.reference, "")
            scores = ", ".join(f"{s:g}" for s in sorted(set(c.scores))) or "–"
            if c.identical:
                members = f"<p>{', '.join(_who(s, sub) for s, sub in c.members)}</p>"
            else:
                members = "<ul>" + "".join(
                    f"<li>{'identical' if len(g) > 1 else 'alone'} ({len(g)}): "
                    f"{', '.join(_who(s, sub) for s, sub in g)}</li>" for g in c.groups) + "</ul>"
            parts.append(f"<details><summary><b>{len(c.members)} submissions</b>, {_e(kind)}{ref} · "
                         f"exercise points: {_e(scores)}</summary>{members}"
                         f"<p class=sub>The code most of them share, normalized:</p>"
                         f"<pre>{_e(c.code)}</pre></details>")

    if ungraded or missing:
        parts.append("<h2 id=ungraded>Not graded</h2><table><tr><th>student</th><th>why</th></tr>")
        for s in ungraded:
            parts.append(f"<tr><td>{_who(s.student_id, s.row.submission)}</td><td>{_e(s.reason)}</td></tr>")
        for s in missing:
            parts.append(f"<tr><td>{_e(s.student_id)} {_e(s.name)}</td><td>{_e(s.reason)}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(folder: str | Path, output: str | Path | None = None, *, threshold: float = DEFAULT_THRESHOLD,
                 top: int = 10) -> Path:
    with Gradebook(folder, create=False) as book:
        report = build_report(book, threshold=threshold, top=top)
    target = Path(output) if output else Path(folder) / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(render_report(report), encoding="utf-8")
    tmp.replace(target)
    return target
