"""Matching two models' layer lists: an optimal alignment (edit distance with adjacent
swaps), never position by position, so a missing layer shows up as missing instead of
shifting every later row, and a list that is too short can never pass.

The lists come from `grader.checks.graph` in a canonical order (commutative merges'
branches in a fixed order), so aligning lists is aligning graphs: two models that
differ only in the order a student wrote an Add's inputs give the same list.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

from grader.checks.specs import LayerSpec

@dataclass(frozen=True)
class Row:
    """One aligned row. op: equal, changed (same kind, other settings), missing, extra,
    swapped (two adjacent layers in the other order), moved (a missing layer found
    elsewhere), replaced (another kind of layer in its place)."""

    expected: int | None
    found: int | None
    op: str


@dataclass(frozen=True)
class Alignment:
    rows: tuple[Row, ...]
    pairs: dict  # expected index -> found index, for layers of the same kind

    @property
    def exact(self) -> bool:
        return all(r.op == "equal" for r in self.rows)

    def row_of_found(self, f: int) -> int:
        return next((k for k, r in enumerate(self.rows) if r.found == f), 0)

    def row_of_expected(self, e: int) -> int:
        return next((k for k, r in enumerate(self.rows) if r.expected == e), 0)


_INF = float("inf")
Same = Callable[[int, int], bool]  # (expected index, found index) -> the same layer?


def spelling(expected: Sequence[LayerSpec], found: Sequence[LayerSpec]) -> Same:
    """Two layers are the same when their canonical specs are: the default test."""
    return lambda e, f: expected[e].same_layer(found[f])


class _Lists:
    """The two lists and the test of sameness, seen from an offset into both (the
    differing middle of the lists, see `_aligned_rows`)."""

    def __init__(self, exp: Sequence[LayerSpec], fnd: Sequence[LayerSpec], same: Same, di: int = 0, dj: int = 0):
        self.exp, self.fnd, self.same, self.di, self.dj = exp, fnd, same, di, dj
        self._memo: dict[tuple[int, int], bool] = {}

    def equal(self, i: int, j: int) -> bool:
        """exp[i] and fnd[j] (offsets applied) are the same layer."""
        key = (i, j)
        if key not in self._memo:
            self._memo[key] = bool(self.same(i + self.di, j + self.dj))
        return self._memo[key]

    def sub_cost(self, i: int, j: int) -> float:
        if self.exp[i + self.di].kind != self.fnd[j + self.dj].kind:
            return _INF
        return 0.0 if self.equal(i, j) else 1.0

    def swap_cost(self, i: int, j: int) -> float:
        """Cost of aligning exp[i-2:i] with fnd[j-2:j] as the same two layers swapped."""
        if i < 2 or j < 2 or self.exp[i - 2 + self.di].kind == self.exp[i - 1 + self.di].kind:
            return _INF
        return 1.0 + self.sub_cost(i - 2, j - 1) + self.sub_cost(i - 1, j - 2)


def _distance_table(lists: _Lists, n: int, m: int) -> list[list[float]]:
    d = [[float(i + j) if i == 0 or j == 0 else 0.0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j - 1] + lists.sub_cost(i - 1, j - 1), d[i - 1][j] + 1,
                          d[i][j - 1] + 1, d[i - 2][j - 2] + lists.swap_cost(i, j) if i > 1 and j > 1 else _INF)
    return d


def _backtrack(lists: _Lists, n: int, m: int, d: list[list[float]]) -> list[Row]:
    """From the end, preferring a (changed) match, then a swap, then a missing layer,
    then an extra one, so ties put gaps early and rows read naturally."""
    rows: list[Row] = []
    i, j = n, m
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + lists.sub_cost(i - 1, j - 1):
            rows.append(Row(i - 1, j - 1, "equal" if lists.equal(i - 1, j - 1) else "changed"))
            i, j = i - 1, j - 1
        elif i > 1 and j > 1 and d[i][j] == d[i - 2][j - 2] + lists.swap_cost(i, j):
            rows += [Row(i - 1, j - 1, "swapped"), Row(i - 2, j - 2, "swapped")]
            i, j = i - 2, j - 2
        elif i and d[i][j] == d[i - 1][j] + 1:
            rows.append(Row(i - 1, None, "missing"))
            i -= 1
        else:
            rows.append(Row(None, j - 1, "extra"))
            j -= 1
    return rows[::-1]


def _pair_moves(rows: list[Row], same: Same) -> list[Row]:
    """A missing layer identical to an extra one elsewhere was moved, not lost."""
    rows = list(rows)
    for a, row in enumerate(rows):
        if row.op != "missing":
            continue
        for b, other in enumerate(rows):
            if other.op == "extra" and same(row.expected, other.found):
                rows[a], rows[b] = replace(row, op="moved"), replace(other, op="moved")
                break
    return rows


def _pair_replacements(rows: list[Row]) -> list[Row]:
    """One missing layer next to one extra layer of another kind: a replacement."""
    out: list[Row] = []
    k = 0
    while k < len(rows):
        here, nxt = rows[k], rows[k + 1] if k + 1 < len(rows) else None
        single = nxt is not None and {here.op, nxt.op} == {"missing", "extra"}
        lonely = single and _isolated(rows, k, k + 1)
        if lonely:
            out.append(Row(here.expected if here.expected is not None else nxt.expected,
                           here.found if here.found is not None else nxt.found, "replaced"))
            k += 2
        else:
            out.append(here)
            k += 1
    return out


def _isolated(rows: list[Row], a: int, b: int) -> bool:
    before = rows[a - 1].op if a > 0 else "equal"
    after = rows[b + 1].op if b + 1 < len(rows) else "equal"
    return before not in ("missing", "extra") and after not in ("missing", "extra")


def _pairs(rows: Sequence[Row], same: Same) -> dict:
    pairs = {r.expected: r.found for r in rows if r.op in ("equal", "changed")}
    for k, r in enumerate(rows):
        if r.op == "swapped" and k + 1 < len(rows) and rows[k + 1].op == "swapped" and r.expected not in pairs:
            pairs[r.expected], pairs[rows[k + 1].expected] = rows[k + 1].found, r.found
    moved_e = [r.expected for r in rows if r.op == "moved" and r.expected is not None]
    moved_f = [r.found for r in rows if r.op == "moved" and r.found is not None]
    for e in moved_e:
        f = next(f for f in moved_f if same(e, f))
        moved_f.remove(f)
        pairs[e] = f
    return pairs


def _aligned_rows(exp: Sequence[LayerSpec], fnd: Sequence[LayerSpec], same: Same) -> list[Row]:
    """The equal head and tail pair up as they are; only the middle, where the lists
    differ, pays for the quadratic table. A correct ResNet50 (about 175 layers) then
    costs one pass, and one changed layer a table of a few cells."""
    n, m = len(exp), len(fnd)
    eq = lambda i, j: exp[i].kind == fnd[j].kind and same(i, j)  # noqa: E731
    head = 0
    while head < min(n, m) and eq(head, head):
        head += 1
    tail = 0
    while tail < min(n, m) - head and eq(n - 1 - tail, m - 1 - tail):
        tail += 1
    lists = _Lists(exp, fnd, same, head, head)
    mid_n, mid_m = n - tail - head, m - tail - head
    middle = [Row(None if r.expected is None else r.expected + head, None if r.found is None else r.found + head, r.op)
              for r in _backtrack(lists, mid_n, mid_m, _distance_table(lists, mid_n, mid_m))]
    return ([Row(i, i, "equal") for i in range(head)] + middle
            + [Row(n - tail + k, m - tail + k, "equal") for k in range(tail)])


def align_specs(expected: Sequence[LayerSpec], found: Sequence[LayerSpec], same: Same | None = None) -> Alignment:
    """Optimal alignment of two spec lists: unit cost per missing, extra, changed or
    swapped layer; layers of different kinds are never paired as "changed". `same`
    decides whether two layers of the same kind are the same layer (default: their
    canonical specs are equal; `grader.checks.equivalence` also asks what they compute
    at the graph's shapes)."""
    same = same or spelling(expected, found)
    rows = _aligned_rows(expected, found, same)
    rows = _pair_replacements(_pair_moves(rows, lambda e, f: expected[e].kind == found[f].kind and same(e, f)))
    return Alignment(tuple(rows), _pairs(rows, lambda e, f: expected[e].kind == found[f].kind and same(e, f)))
