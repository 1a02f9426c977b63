"""The mutants of one module: every small change ``make mutate`` makes, found on Python's AST.

Why the AST and not mutmut: mutmut 2's parser (parso) cannot read ``match`` statements, so
``topics.py`` and the agent's ``admission.py`` went unmeasured. Python's own ``ast`` reads
every file the interpreter reads. The operators are mutmut's (so figures stay comparable):

- a number gains 1, a string is wrapped in ``XX``, ``True``/``False`` swap;
- ``+ - * / // % ** << >> | & ^`` and their augmented forms swap as mutmut swaps them;
- ``== != < <= > >= is is-not in not-in`` turn into their neighbour;
- ``and``/``or`` swap, ``not x`` becomes ``x``, ``break``/``continue`` swap;
- the value of an assignment that is not a constant becomes ``None``.

Not mutated, because no test could ever see the change (each is an equivalent mutant by
construction, the kind mutmut 2's results had to explain one by one): docstrings (and any
bare string statement, such as an attribute's docstring), the
annotations of function arguments and returns and of module-level or local variables
(strings under ``from __future__ import annotations``; class-level field annotations *are*
mutated, pydantic reads them), the name argument of ``NewType``/``TypeVar``, format specs in
f-strings, and decorators (removing one is not among the operators).

Enumeration is deterministic: the same source always yields the same numbered mutants, so
the fast in-process runner and the slow fresh-interpreter runner agree on what ``#17`` is.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from mutate.operators import BINOP, CMPOP, NAME_CALLS


@dataclass(frozen=True)
class Mutant:
    """One numbered change: where it is, what it does, and which function holds it."""

    index: int
    line: int
    end_line: int
    col: int
    before: str
    after: str
    scope: str | None
    """The qualified name of the outermost ``def`` whose *body* holds the change (so the
    change can be applied by swapping that function's code object in place), or None when
    the change runs at import time (module or class level, defaults, decorators)."""
    scope_line: int

    def describe(self) -> str:
        return f"line {self.line} col {self.col}: `{self.before}` → `{self.after}`"


@dataclass
class _Site:
    owner: Any
    field: str
    index: int | None
    new: Any
    shown_before: ast.AST
    shown_after: ast.AST
    line: int
    end_line: int
    col: int
    scope: str | None
    scope_line: int


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 160 else text[:157] + "..."


class _Walker:
    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.sites: list[_Site] = []

    # -- traversal -----------------------------------------------------------------------
    def run(self) -> list[_Site]:
        self._body(self.tree.body, prefix="", scope=None, scope_line=0, in_class=False)
        return self.sites

    def _body(
        self, body: list[ast.stmt], prefix: str, scope: str | None, scope_line: int, in_class: bool
    ) -> None:
        for i, stmt in enumerate(body):
            is_doc = (  # a docstring, or a bare string after an attribute (its docstring)
                isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            )
            if is_doc:
                continue
            self._stmt(body, i, stmt, prefix, scope, scope_line, in_class)

    def _stmt(
        self,
        body: list[ast.stmt],
        i: int,
        stmt: ast.stmt,
        prefix: str,
        scope: str | None,
        scope_line: int,
        in_class: bool,
    ) -> None:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            # Decorators and defaults run at import time: they are mutated as module-level
            # code would be (scope None); argument and return annotations are not mutated.
            args = stmt.args
            for k, default in enumerate(args.defaults):
                self._child(args, "defaults", k, default, scope, scope_line)
            for k, default in enumerate(args.kw_defaults):
                self._child(args, "kw_defaults", k, default, scope, scope_line)
            qual = f"{prefix}{stmt.name}"
            first = stmt.decorator_list[0].lineno if stmt.decorator_list else stmt.lineno
            inner_scope, inner_line = (scope, scope_line) if scope else (qual, first)
            self._body(stmt.body, f"{qual}.<locals>.", inner_scope, inner_line, in_class=False)
            return
        if isinstance(stmt, ast.ClassDef):
            for k, base in enumerate(stmt.bases):
                self._child(stmt, "bases", k, base, scope, scope_line)
            for kw in stmt.keywords:
                self._child(kw, "value", None, kw.value, scope, scope_line)
            self._body(stmt.body, f"{prefix}{stmt.name}.", scope, scope_line, in_class=True)
            return
        if isinstance(stmt, ast.Break | ast.Continue):
            swapped = ast.Continue() if isinstance(stmt, ast.Break) else ast.Break()
            self._add(body, "", i, swapped, stmt, swapped, stmt, scope, scope_line)
            return
        if isinstance(stmt, ast.AnnAssign):
            if in_class:
                self._child(stmt, "annotation", None, stmt.annotation, scope, scope_line)
            if stmt.value is not None:
                self._value_to_none(stmt, stmt.value, scope, scope_line)
                self._child(stmt, "value", None, stmt.value, scope, scope_line)
            return
        if isinstance(stmt, ast.Assign):
            self._value_to_none(stmt, stmt.value, scope, scope_line)
            self._child(stmt, "value", None, stmt.value, scope, scope_line)
            for k, target in enumerate(stmt.targets):
                self._child(stmt, "targets", k, target, scope, scope_line)
            return
        if isinstance(stmt, ast.AugAssign):
            swap = BINOP.get(type(stmt.op))
            if swap is not None:
                self._swap(stmt, "op", None, swap(), {"op": swap()}, scope, scope_line)
            self._child(stmt, "value", None, stmt.value, scope, scope_line)
            return
        for name, value in ast.iter_fields(stmt):
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                self._body(value, prefix, scope, scope_line, in_class)
            elif isinstance(value, list):
                for k, item in enumerate(value):
                    if isinstance(item, ast.expr):
                        self._child(stmt, name, k, item, scope, scope_line)
                    else:
                        self._node(item, scope, scope_line, in_class, prefix)
            elif isinstance(value, ast.expr):
                self._child(stmt, name, None, value, scope, scope_line)
            elif isinstance(value, ast.AST):
                self._node(value, scope, scope_line, in_class, prefix)

    def _node(
        self, node: Any, scope: str | None, scope_line: int, in_class: bool, prefix: str
    ) -> None:
        if isinstance(node, ast.expr):
            self._expr(node, scope, scope_line)
        elif isinstance(node, ast.match_case):
            self._pattern(node.pattern, scope, scope_line)
            if node.guard is not None:
                self._child(node, "guard", None, node.guard, scope, scope_line)
            self._body(node.body, prefix, scope, scope_line, in_class)
        elif isinstance(node, ast.ExceptHandler):
            if node.type is not None:
                self._child(node, "type", None, node.type, scope, scope_line)
            self._body(node.body, prefix, scope, scope_line, in_class)
        elif isinstance(node, ast.withitem):
            self._child(node, "context_expr", None, node.context_expr, scope, scope_line)
        elif isinstance(node, ast.AST):
            for _, value in ast.iter_fields(node):
                if isinstance(value, list):
                    for item in value:
                        self._node(item, scope, scope_line, in_class, prefix)
                elif isinstance(value, ast.AST):
                    self._node(value, scope, scope_line, in_class, prefix)

    def _pattern(self, pattern: ast.pattern, scope: str | None, scope_line: int) -> None:
        for node in ast.walk(pattern):
            if isinstance(node, ast.MatchValue):
                self._child(node, "value", None, node.value, scope, scope_line)

    def _expr(self, node: ast.expr, scope: str | None, scope_line: int) -> None:
        if isinstance(node, ast.Constant):
            return  # a constant is reached through its parent (which can replace it)
        if isinstance(node, ast.Call):
            callee = node.func
            name = callee.id if isinstance(callee, ast.Name) else getattr(callee, "attr", "")
            skip_first = name in NAME_CALLS
        else:
            skip_first = False
        if isinstance(node, ast.BinOp):
            swap = BINOP.get(type(node.op))
            if swap is not None:
                self._swap(node, "op", None, swap(), {"op": swap()}, scope, scope_line)
        elif isinstance(node, ast.BoolOp):
            swap_b: ast.boolop = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            self._swap(node, "op", None, swap_b, {"op": swap_b}, scope, scope_line)
        elif isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                swap_c = CMPOP[type(op)]()
                ops = list(node.ops)
                ops[k] = swap_c
                self._swap(node, "ops", k, swap_c, {"ops": ops}, scope, scope_line)
        elif isinstance(node, ast.JoinedStr):
            for k, part in enumerate(node.values):
                if isinstance(part, ast.Constant):
                    self._constant(node, "values", k, part, scope, scope_line)
                    if self.sites and self.sites[-1].shown_before is part:
                        parts = list(node.values)
                        parts[k] = self.sites[-1].new
                        self.sites[-1].shown_before = node
                        self.sites[-1].shown_after = self._with(node, values=parts)
                elif isinstance(part, ast.FormattedValue):
                    self._expr(part.value, scope, scope_line)
            return
        for fname, value in ast.iter_fields(node):
            if isinstance(value, list):
                for k, item in enumerate(value):
                    if skip_first and fname == "args" and k == 0:
                        continue
                    self._child(node, fname, k, item, scope, scope_line)
            else:
                self._child(node, fname, None, value, scope, scope_line)

    def _child(
        self, owner: Any, fname: str, k: int | None, value: Any, scope: str | None, scope_line: int
    ) -> None:
        if isinstance(value, ast.Constant):
            self._constant(owner, fname, k, value, scope, scope_line)
        elif isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.Not):
            self._add(
                owner, fname, k, value.operand, value, value.operand, value, scope, scope_line
            )
            self._expr(value.operand, scope, scope_line)
        elif isinstance(value, ast.expr):
            self._expr(value, scope, scope_line)
        elif isinstance(value, ast.keyword):
            self._child(value, "value", None, value.value, scope, scope_line)
        elif isinstance(value, ast.comprehension):
            for fname2 in ("iter", "target"):
                self._child(value, fname2, None, getattr(value, fname2), scope, scope_line)
            for k2, cond in enumerate(value.ifs):
                self._child(value, "ifs", k2, cond, scope, scope_line)
        elif isinstance(value, ast.arguments):
            for k2, default in enumerate(value.defaults):
                self._child(value, "defaults", k2, default, scope, scope_line)

    def _constant(
        self,
        owner: Any,
        fname: str,
        k: int | None,
        node: ast.Constant,
        scope: str | None,
        scope_line: int,
    ) -> None:
        v = node.value
        new: Any
        if isinstance(v, bool):
            new = not v
        elif isinstance(v, int):
            new = v + 1
        elif isinstance(v, float):
            new = v + 1.0
        elif isinstance(v, str):
            new = f"XX{v}XX"
        elif isinstance(v, bytes):
            new = b"XX" + v + b"XX"
        else:
            return
        replacement = ast.copy_location(ast.Constant(value=new), node)
        self._add(owner, fname, k, replacement, node, replacement, node, scope, scope_line)

    def _value_to_none(
        self, stmt: ast.stmt, value: ast.expr, scope: str | None, scope_line: int
    ) -> None:
        if isinstance(value, ast.Constant):
            return  # a constant is mutated as a constant
        none = ast.copy_location(ast.Constant(value=None), value)
        self._add(stmt, "value", None, none, value, none, value, scope, scope_line)

    # -- recording -----------------------------------------------------------------------
    @staticmethod
    def _with(node: ast.AST, **changes: Any) -> ast.AST:
        clone = ast.copy_location(type(node)(**dict(ast.iter_fields(node))), node)
        for key, val in changes.items():
            setattr(clone, key, val)
        return clone

    def _swap(
        self,
        node: ast.AST,
        fname: str,
        k: int | None,
        new: Any,
        changes: dict[str, Any],
        scope: str | None,
        scope_line: int,
    ) -> None:
        """An operator of ``node`` replaced: shown as ``node`` before and after the change."""
        self._add(node, fname, k, new, node, self._with(node, **changes), node, scope, scope_line)

    def _add(
        self,
        owner: Any,
        fname: str,
        k: int | None,
        new: Any,
        before: ast.AST,
        after: ast.AST,
        at: ast.AST,
        scope: str | None,
        scope_line: int,
    ) -> None:
        line = getattr(at, "lineno", 0)
        self.sites.append(
            _Site(
                owner,
                fname,
                k,
                new,
                before,
                after,
                line,
                getattr(at, "end_lineno", line) or line,
                getattr(at, "col_offset", 0),
                scope,
                scope_line,
            )
        )


def _sites(source: str) -> tuple[ast.Module, list[_Site]]:
    tree = ast.parse(source)
    return tree, _Walker(tree).run()


def enumerate_mutants(source: str) -> list[Mutant]:
    _, sites = _sites(source)
    out = []
    for n, s in enumerate(sites):
        before = ast.get_source_segment(source, s.shown_before) or ast.unparse(s.shown_before)
        out.append(
            Mutant(
                n,
                s.line,
                s.end_line,
                s.col,
                _clip(before),
                _clip(ast.unparse(s.shown_after)),
                s.scope,
                s.scope_line,
            )
        )
    return out


def mutated_tree(source: str, index: int) -> ast.Module:
    """The module's AST with mutant ``index`` applied (a fresh parse each time)."""
    tree, sites = _sites(source)
    site = sites[index]
    if site.field == "":
        site.owner[site.index] = site.new  # a statement in a body (break/continue)
    elif site.index is None:
        setattr(site.owner, site.field, site.new)
    else:
        getattr(site.owner, site.field)[site.index] = site.new
    return ast.fix_missing_locations(tree)
