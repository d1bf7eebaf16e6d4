"""Two graphs side by side, aligned: what every explanation of a difference reads
(`grader.checks.explain` for layers, `grader.checks.wiring` for connections and outputs),
and the problem each explanation produces."""
from __future__ import annotations

from dataclasses import dataclass

from grader.checks.graph import LayerGraph
from grader.checks.matching import Alignment
from grader.checks.naming import which, who
from grader.checks.residual import branch_name, describe
from grader.checks.specs import LayerSpec


@dataclass(frozen=True)
class Problem:
    """One difference, as the feedback says it; `row` is the table row it marks."""

    row: int
    diagnosis: str
    text: str   # the lead: what is wrong and why it matters
    short: str  # one clause, for the "Also:" list
    hint: str


@dataclass(frozen=True)
class Context:
    """The reference's graph, the student's, their alignment, and the assignment's
    options (`merge_order`, `compare`) for the explanations to read."""

    exp: LayerGraph
    fnd: LayerGraph
    alignment: Alignment
    merge_order: str = "fixed"
    compare: tuple[str, ...] = ()
    exercise: str = ""

    @property
    def e(self) -> list[LayerSpec]:
        return self.exp.specs

    @property
    def f(self) -> list[LayerSpec]:
        return self.fnd.specs

    def found(self, i: int) -> str:
        """A student's layer as they can find it (location, their name, branch, position)."""
        return describe(self.fnd, i)

    def result(self, i: int) -> str:
        """Whose result node `i` is, as the student can find it: a Conv's own
        activation is that Conv's result ("the second Conv2D", not its argument)."""
        spec = self.f[i]
        if spec.name.endswith("/activation") and spec.inputs:
            return self.found(spec.inputs[0])
        return self.found(i)

    def found_which(self, i: int) -> str:
        """"the fourth Conv2D" or "the shortcut branch's Conv2D", with where the student
        created it when known."""
        branch = branch_name(self.fnd, i)
        where = self.fnd.nodes[i].location
        if where and not branch and self.fnd.call_rank(i)[1] > 1:  # "the third of the 5 Conv2D layers that ..."
            return who(self.fnd, i)
        base = branch or which(self.fnd, i)
        return f"{base} ({where.aside()})" if where else base

    def expected(self, e: int) -> str:
        """A reference layer by its branch or position only: its names and where it was
        written are the instructor's, never shown."""
        return branch_name(self.exp, e) or which(self.exp, e)


__all__ = ["Context", "Problem"]
