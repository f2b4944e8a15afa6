"""Compile a flag's targeting rule into Python closures, once, when the flags load.

The rule is JsonLogic (https://jsonlogic.com/operations.html) with flagd's
operators (https://flagd.dev/reference/custom-operations/). Every node becomes a
closure over its pre-compiled operands; constant sub-trees are folded, a constant
`var` path becomes a direct lookup. Results match flagd-core 1.0.0 (which
interprets the JSON on every evaluation with panzi-json-logic 1.0.1).

Nodes whose result can become the variant (the rule itself, the branches of
`if`, the operands of `and` / `or`) are also compiled in "tail" form, which
returns the value together with the `SplitInfo` of the `fractional` node that
produced it, so that a split is reported only when it chose the variant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..split_ids import SplitSite, split_sites
from . import data_reads as data
from . import fractional_nodes as split
from . import operators as ops
from . import special_forms as forms
from .jsonlogic import fresh, to_bool
from .operators import Expr, constant
from .rule_checks import Checker

Fn = Callable[[Any], Any]
TailResult = split.TailResult
Tail = split.Tail
new_state = data.new_state
_ITERATING = frozenset({"filter", "map", "reduce", "all", "some", "none"})
_B = TypeVar("_B")


class TargetingParseError(Exception):
    """The rule cannot be interpreted (e.g. an unknown operator): flagd's PARSE_ERROR."""


@dataclass(frozen=True, slots=True)
class FlagScope:
    """What the compiler knows about the flag whose rule it compiles."""

    key: str
    variants: Mapping[str, Any]
    source: str = ""
    strict: bool = True
    evaluators: frozenset[str] = frozenset()
    ref_sites: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _args(raw: Any, base: str) -> tuple[list[Any], list[str]]:
    if isinstance(raw, list):
        return raw, [f"{base}/{i}" for i in range(len(raw))]
    return [raw], [base]


_NOTHING: TailResult = split.NOTHING


def _no_match(_s: Any) -> TailResult:
    return _NOTHING


_NO_MATCH: Tail = _no_match


class _Compiler:
    def __init__(self, scope: FlagScope, sites: dict[int, SplitSite]) -> None:
        self.scope = scope
        self.sites = sites
        self.check = Checker(scope.key, scope.variants, scope.source, scope.ref_sites)
        self.strict = scope.strict
        self.const_tails: dict[Tail, TailResult] = {}

    # -- tail form: nodes whose value may become the variant --------------------------

    def tail(self, node: Any, path: str) -> Tail:
        if isinstance(node, dict) and len(node) == 1:
            op, raw = next(iter(node.items()))
            base = f"{path}/{_escape(op)}"
            args, paths = _args(raw, base)
            if op in ("if", "?:", "and", "or", "fractional"):
                self._arity(op, args, base)
            if op in ("if", "?:"):
                live, otherwise = self._if_plan(args, paths, self.tail, root=True)
                other = _NO_MATCH if otherwise is None else otherwise
                if not live:
                    return other
                return self._choose_tail(live, other)
            if op in ("and", "or"):
                return forms.logic(
                    op, [self.tail(a, p) for a, p in zip(args, paths, strict=True)], True
                )
            if op == "fractional":
                if self.strict:
                    self.check.split_variants(args, base)
                return self._fractional(node, args, paths, base, root=True)[1]
        expr = self.expr(node, path, root=True)
        if expr.const and self.strict:
            self.check.variant(expr.value, path)
        if expr.const and not isinstance(expr.value, list):
            result: TailResult = (expr.value, None, None)

            def constant_tail(_s: Any) -> TailResult:
                return result

            self.const_tails[constant_tail] = result
            return constant_tail
        fn = expr.fn
        return lambda s: (fn(s), None, None)

    def _choose_tail(self, live: list[tuple[Fn, Tail]], other: Tail) -> Tail:
        """`_choose` for tails; one condition between constant results returns them directly."""
        consts = self.const_tails
        if other is _NO_MATCH:
            consts[_NO_MATCH] = _NOTHING
        if len(live) != 1 or live[0][1] not in consts or other not in consts:
            return forms.choose(live, other)
        cond, then = live[0][0], consts[live[0][1]]
        otherwise = consts[other]

        def pick(s: Any) -> TailResult:
            value = cond(s)
            if value is True or (value is not False and to_bool(value)):
                return then
            return otherwise

        return pick

    # -- plain form ---------------------------------------------------------------------

    def expr(self, node: Any, path: str, root: bool) -> Expr:
        if isinstance(node, list):
            items = [self.expr(item, f"{path}/{i}", root) for i, item in enumerate(node)]
            if all(item.const for item in items):
                return constant([item.value for item in items])
            fns = [item.fn for item in items]
            return Expr(lambda s: [f(s) for f in fns])
        if not isinstance(node, dict):
            return constant(node)
        if len(node) != 1:
            if self.strict:
                raise self.check.fail(path, "an object in a rule must hold exactly one operator")
            return constant(node)  # the interpreter returns such an object as it is
        op, raw = next(iter(node.items()))
        base = f"{path}/{_escape(op)}"
        args, paths = _args(raw, base)
        self._arity(op, args, base)
        return self._operator(node, op, args, paths, base, root=root)

    def _operator(
        self, node: Any, op: str, args: list[Any], paths: list[str], base: str, *, root: bool
    ) -> Expr:
        if op in ("if", "?:"):
            return self._if(args, paths, root)
        if op in _ITERATING:
            return Expr(self._iterate(op, args, paths, root))
        if op == "fractional":
            return self._fractional(node, args, paths, base, root=root)[0]
        exprs = [self.expr(a, p, root) for a, p in zip(args, paths, strict=True)]
        if op in ("and", "or"):
            return self._fold(forms.logic(op, [e.fn for e in exprs], False), exprs, base)
        if op == "var":
            return self._var(exprs, base, root)
        if op in ("missing", "missing_some"):
            return Expr(data.missing_fn(op, [e.fn for e in exprs], root=root))
        if op in ops.PURE:
            return self._pure(op, exprs, base)
        if op in ops.EFFECTFUL:
            return Expr(ops.call(ops.EFFECTFUL[op], [e.fn for e in exprs]))
        return Expr(self._unknown(op, args, exprs, base))

    def _arity(self, op: str, args: list[Any], base: str) -> None:
        if self.strict:
            self.check.arity(op, args, base)

    def _fold(self, fn: Fn, exprs: list[Expr], base: str) -> Expr:
        """A constant when every operand is one and `fn` succeeds on them."""
        if not all(e.const for e in exprs):
            return Expr(fn)
        try:
            value = fn(None)
        except Exception as exc:
            if self.strict:
                raise self.check.fail(base, f"always fails: {type(exc).__name__}: {exc}") from exc
            return Expr(fn)
        return constant(value)

    def _pure(self, op: str, exprs: list[Expr], base: str) -> Expr:
        impl = ops.PURE[op]
        if all(e.const for e in exprs):
            values = [fresh(e.value) for e in exprs]
            return self._fold(lambda _s: impl(*values), exprs, base)
        fast = ops.fast_path(op, exprs)
        return Expr(fast or ops.call(impl, [e.fn for e in exprs]))

    def _if_plan(
        self, args: list[Any], paths: list[str], branch: Callable[[Any, str], _B], *, root: bool
    ) -> tuple[list[tuple[Fn, _B]], _B | None]:
        """The live (condition, branch) pairs of an `if` chain and its else branch.

        Constant conditions pick or drop their branch at compile time.
        """
        conds = [self.expr(args[i], paths[i], root) for i in range(0, len(args) - 1, 2)]
        thens = [branch(args[i], paths[i]) for i in range(1, len(args), 2)]
        otherwise = branch(args[-1], paths[-1]) if len(args) % 2 == 1 else None
        live: list[tuple[Fn, _B]] = []
        for cond, then in zip(conds, thens, strict=False):
            if not cond.const:
                live.append((cond.fn, then))
            elif to_bool(cond.value):
                otherwise = then
                break
        return live, otherwise

    def _if(self, args: list[Any], paths: list[str], root: bool) -> Expr:
        live, otherwise = self._if_plan(args, paths, lambda a, p: self.expr(a, p, root), root=root)
        other = constant(None) if otherwise is None else otherwise
        if not live:
            return other
        return Expr(forms.choose([(cond, then.fn) for cond, then in live], other.fn))

    def _iterate(self, op: str, args: list[Any], paths: list[str], root: bool) -> Fn:
        """`filter`, `map`, `reduce`, `all`, `some`, `none`: the body sees each item as data."""
        if not args:
            return constant(forms.EMPTY_ITERATION[op]).fn
        items = self.expr(args[0], paths[0], root).fn
        body = self.expr(args[1], paths[1], False).fn if len(args) > 1 else constant(None).fn
        return forms.ITERATORS[op](items, body, args[2] if len(args) > 2 else None, len(args))

    def _var(self, exprs: list[Expr], base: str, root: bool) -> Expr:
        if len(exprs) > 2:
            return Expr(
                forms.raise_after(
                    [e.fn for e in exprs], lambda: TypeError("var takes at most 2 arguments")
                )
            )
        key = exprs[0] if exprs else constant(None)
        default = exprs[1] if len(exprs) > 1 else constant(None)
        if not key.const:
            return Expr(data.dynamic_var_fn([e.fn for e in exprs], root=root))
        if self.strict:
            self.check.var_key(key.value, base)
        if data.is_constant_var(key.value, root=root) and default.const:
            return constant(self.scope.key)
        fn = data.var_fn(
            key.value,
            None if default.const else default.fn,
            default.value,
            root=root,
            flag_key=self.scope.key,
        )
        plain = default.const and default.value is None
        return Expr(fn, path=data.attribute_path(key.value, root=root) if plain else None)

    def _fractional(
        self, node: Any, args: list[Any], paths: list[str], base: str, *, root: bool
    ) -> tuple[Expr, Tail]:
        exprs = [self.expr(a, p, root) for a, p in zip(args, paths, strict=True)]
        if self.strict:
            self.check.fractional(args, base)
        plain, tail = split.fractional(
            [e.fn for e in exprs],
            [(e.const, e.value) for e in exprs],
            self.sites[id(node)],
            root=root,
            flag_key=self.scope.key,
            metadata=self.scope.metadata,
        )
        return Expr(plain), tail

    def _unknown(self, op: str, args: list[Any], exprs: list[Expr], base: str) -> Fn:
        """An operator flagd-core does not know fails when it is reached, not at load."""
        if self.strict:
            raise self.check.unknown(op, base, self.scope.evaluators, args[0] if args else None)
        if "." in op and op.split(".", maxsplit=1)[0] in ops.OPERATIONS:
            return forms.raise_after(
                [e.fn for e in exprs], lambda: TypeError(f"cannot resolve operation {op!r}")
            )
        return forms.raise_after(
            [e.fn for e in exprs], lambda: TargetingParseError(f"Unrecognized operation: {op!r}")
        )


def compile_targeting(targeting: Any, scope: FlagScope) -> Tail | None:
    """Compile a flag's rule; None when it has none (a falsy `targeting`, like flagd-core).

    Raises `FlagValidationError` in strict mode for a malformed rule. Outside strict
    mode a malformed rule compiles to closures that fail the way flagd-core does.
    """
    if not targeting:
        return None
    checker = Checker(scope.key, scope.variants, scope.source, scope.ref_sites)
    if not isinstance(targeting, dict):
        if scope.strict:
            raise checker.fail("/targeting", "targeting must be an object")
        message = f"Invalid 'targeting' value in flag: {targeting}"

        def broken(_s: Any) -> TailResult:
            raise TargetingParseError(message)

        return broken
    compiler = _Compiler(scope, split_sites(scope.key, targeting))
    try:
        return compiler.tail(targeting, "/targeting")
    except RecursionError:
        raise checker.fail("/targeting", "the rule is nested too deeply") from None


__all__ = ["FlagScope", "TargetingParseError", "compile_targeting", "new_state"]
