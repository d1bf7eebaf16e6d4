"""Which top-level statements are safe and cheap to run: imports, definitions, constants."""
from __future__ import annotations

import ast

_NUMERIC_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift, ast.RShift)


def _is_number(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex))


def _is_arithmetic(node: ast.expr, budget: list[int]) -> bool:
    """Arithmetic on number literals whose cost is obviously tiny.

    Powers and shifts need both operands to be plain literals and a small exponent,
    so `2**10` and `1 << 20` pass but `2**10**10` (which would stall whoever evaluates
    it) does not. Only numbers: `"ab" * 10**9` is not a constant in this sense.
    """
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if _is_number(node):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _is_arithmetic(node.operand, budget)
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, _NUMERIC_OPS)):
        return False
    if isinstance(node.op, (ast.Pow, ast.LShift, ast.RShift)):
        if not (_is_number(node.left) and _is_number(node.right)):
            return False
        exponent = node.right.operand if isinstance(node.right, ast.UnaryOp) else node.right
        return abs(exponent.value) <= 256  # type: ignore[union-attr]
    return _is_arithmetic(node.left, budget) and _is_arithmetic(node.right, budget)


def _is_literal(node: ast.expr, budget: list[int]) -> bool:
    """What `ast.literal_eval` would accept, plus cheap number arithmetic."""
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(not isinstance(e, ast.Starred) and _is_literal(e, budget) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_literal(k, budget) for k in node.keys) and all(
            _is_literal(v, budget) for v in node.values
        )
    return _is_arithmetic(node, budget)


def _module_attribute(node: ast.expr, imported: set[str]) -> bool:
    """`np.float32`, `tf.keras.activations.relu`: a dotted name rooted at something an
    earlier import bound. Deliberately narrow: no calls, subscripts or arithmetic, and
    the whole value must be the attribute, because reading an attribute of a library
    runs only that library's code (at most a lazy import), never the student's."""
    depth = 0
    while isinstance(node, ast.Attribute):
        node = node.value
        depth += 1
    return depth >= 1 and isinstance(node, ast.Name) and node.id in imported


def _target_names(target: ast.expr) -> list[str] | None:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        names: list[str] = []
        for element in target.elts:
            inner = _target_names(element)
            if inner is None:
                return None
            names.extend(inner)
        return names
    return None


def _constant_assignment(node: ast.stmt, imported: set[str]) -> list[str] | None:
    """Names bound, if `node` is a plain constant assignment; None otherwise."""
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None and node.simple:
        targets, value = [node.target], node.value
    else:
        return None
    names: list[str] = []
    for target in targets:
        bound = _target_names(target)
        if bound is None:
            return None
        names.extend(bound)
    if _is_literal(value, [200]) or _module_attribute(value, imported):
        return names
    return None


def _import_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    names = []
    for alias in node.names:
        if alias.name == "*":
            continue
        names.append(alias.asname or alias.name.split(".")[0])
    return names


def _classify(node: ast.stmt, imported: set[str]) -> tuple[str, list[str]] | None:
    """(kind, names bound) for a statement worth running, None for one to skip."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return "import", _import_names(node)
    if _is_def(node):
        return "def", [node.name]
    if isinstance(node, ast.ClassDef):
        return "class", [node.name]
    names = _constant_assignment(node, imported)
    if names is not None:
        return "assign", names
    return None


def _is_future(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


# The grader's own self-check (`from grader import check`) is for the student's kernel; it
# is not installed in the sandbox and no graded function needs it.
_GRADER_MODULES = frozenset({"grader"})


def _is_grader_import(node: ast.stmt) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and (node.module or "").split(".")[0] in _GRADER_MODULES
    if isinstance(node, ast.Import):
        return all(alias.name.split(".")[0] in _GRADER_MODULES for alias in node.names)
    return False


def _is_def(node: ast.AST) -> bool:
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
