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

from . import compile_data as data
from . import compile_ops as ops
from .compile_checks import Checker
from .fractional import SplitInfo
from .jsonlogic import fresh, not_, to_bool

Fn = Callable[[Any], Any]
Tail = Callable[[Any], tuple[Any, SplitInfo | None]]
EvalState = data.EvalState
_ITERATING = frozenset({"filter", "map", "reduce", "all", "some", "none"})
_B = TypeVar("_B")
_EMPTY_ITERATION: dict[str, Any] = {
    "filter": [],
    "map": [],
    "reduce": None,
    "all": False,
    "some": False,
    "none": True,
}


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


@dataclass(frozen=True, slots=True)
class Expr:
    """A compiled node: its closure, and its value when it is a constant."""

    fn: Fn
    const: bool = False
    value: Any = None


def constant(value: Any) -> Expr:
    """A literal; lists are rebuilt on every call, as the interpreter does."""
    if isinstance(value, list):
        return Expr(lambda _s: fresh(value), True, value)
    return Expr(lambda _s: value, True, value)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _args(raw: Any, base: str) -> tuple[list[Any], list[str]]:
    if isinstance(raw, list):
        return raw, [f"{base}/{i}" for i in range(len(raw))]
    return [raw], [base]


def _is_true(value: Any) -> bool:
    return value is True or (value is not False and to_bool(value))


def _choose(pairs: list[tuple[Fn, Fn]], otherwise: Fn) -> Fn:
    """The closure of an `if` chain: the first branch whose condition is truthy."""
    if len(pairs) == 1:
        ((cond, then),) = pairs
        return lambda s: then(s) if _is_true(cond(s)) else otherwise(s)

    def chain(s: Any) -> Any:
        for cond, then in pairs:
            if _is_true(cond(s)):
                return then(s)
        return otherwise(s)

    return chain


def _logic(op: str, fns: list[Fn], tail: bool) -> Fn:
    """`and` returns the first falsy operand, `or` the first truthy one, else the last."""
    stop = not_ if op == "and" else to_bool

    def run(s: Any) -> Any:
        current: Any = (None, None) if tail else None
        for f in fns:
            current = f(s)
            if stop(current[0] if tail else current):
                return current
        return current

    return run


def _no_match(_s: Any) -> tuple[Any, SplitInfo | None]:
    return None, None


_NO_MATCH: Tail = _no_match


class _Compiler:
    def __init__(self, scope: FlagScope, sites: dict[int, data.SplitSite]) -> None:
        self.scope = scope
        self.sites = sites
        self.check = Checker(scope.key, scope.variants, scope.source, scope.ref_sites)
        self.strict = scope.strict

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
                return _choose(live, other) if live else other
            if op in ("and", "or"):
                return _logic(op, [self.tail(a, p) for a, p in zip(args, paths, strict=True)], True)
            if op == "fractional":
                if self.strict:
                    self.check.split_variants(args, base)
                return self._fractional(node, args, paths, base, root=True)[1]
        expr = self.expr(node, path, root=True)
        if expr.const and self.strict:
            self.check.variant(expr.value, path)
        fn = expr.fn
        return lambda s: (fn(s), None)

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
            return self._fold(_logic(op, [e.fn for e in exprs], False), exprs, base)
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
        fast = _fast_path(op, exprs)
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
        return Expr(_choose([(cond, then.fn) for cond, then in live], other.fn))

    def _iterate(self, op: str, args: list[Any], paths: list[str], root: bool) -> Fn:
        """`filter`, `map`, `reduce`, `all`, `some`, `none`: the body sees each item as data."""
        if not args:
            return constant(_EMPTY_ITERATION[op]).fn
        items = self.expr(args[0], paths[0], root).fn
        body = self.expr(args[1], paths[1], False).fn if len(args) > 1 else constant(None).fn
        return _ITERATORS[op](items, body, args[2] if len(args) > 2 else None, len(args))

    def _var(self, exprs: list[Expr], base: str, root: bool) -> Expr:
        if len(exprs) > 2:
            return Expr(self._raise(exprs, TypeError("var takes at most 2 arguments")))
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
        return Expr(fn)

    def _fractional(
        self, node: Any, args: list[Any], paths: list[str], base: str, *, root: bool
    ) -> tuple[Expr, Tail]:
        exprs = [self.expr(a, p, root) for a, p in zip(args, paths, strict=True)]
        if self.strict:
            self.check.fractional(args, base)
        site = self.sites[id(node)]
        run = data.bucketer(
            [e.fn for e in exprs],
            [(e.const, e.value) for e in exprs],
            root=root,
            flag_key=self.scope.key,
        )

        def plain(s: Any) -> Any:
            result = run(s)
            return None if result is None else result.variant

        def tail(s: Any) -> tuple[Any, SplitInfo | None]:
            result = run(s)
            if result is None or result.variant is None:
                return None, None
            unit = "targetingKey" if result.shorthand else site.unit
            info = SplitInfo(site.split_id, result.table.weights, unit, result.bucket_key)
            return result.variant, info

        return Expr(plain), tail

    def _unknown(self, op: str, args: list[Any], exprs: list[Expr], base: str) -> Fn:
        """An operator flagd-core does not know fails when it is reached, not at load."""
        if self.strict:
            raise self.check.unknown(op, base, self.scope.evaluators, args[0] if args else None)
        if "." in op and op.split(".", maxsplit=1)[0] in ops.OPERATIONS:
            return self._raise(exprs, TypeError(f"cannot resolve operation {op!r}"))
        return self._raise(exprs, TargetingParseError(f"Unrecognized operation: {op!r}"))

    @staticmethod
    def _raise(exprs: list[Expr], error: Exception) -> Fn:
        fns = [e.fn for e in exprs]

        def fail(s: Any) -> Any:
            for f in fns:  # the interpreter evaluates the arguments first
                f(s)
            raise error

        return fail


def _fast_path(op: str, exprs: list[Expr]) -> Fn | None:
    if op in ("==", "!=") and len(exprs) == 2:
        left, right = exprs
        negate = op == "!="
        if right.const and isinstance(right.value, str) and not left.const:
            return ops.equals_constant(left.fn, right.value, constant_first=False, negate=negate)
        if left.const and isinstance(left.value, str) and not right.const:
            return ops.equals_constant(right.fn, left.value, constant_first=True, negate=negate)
    if op == "in" and len(exprs) == 2 and exprs[1].const and not exprs[0].const:
        haystack = exprs[1].value
        if isinstance(haystack, list) and all(isinstance(item, str) for item in haystack):
            return ops.in_constant(exprs[0].fn, haystack)
    if op == "sem_ver" and len(exprs) == 3 and exprs[1].const and exprs[2].const:
        return ops.sem_ver_constant(exprs[0].fn, exprs[1].value, exprs[2].value)
    return None


def _filter(items: Fn, body: Fn, _init: Any, argc: int) -> Fn:
    if argc < 2:
        return constant([]).fn

    def run(s: Any) -> Any:
        values = items(s)
        if not isinstance(values, list):
            return []
        return [item for item in values if to_bool(body(item))]

    return run


def _map(items: Fn, body: Fn, _init: Any, _argc: int) -> Fn:
    def run(s: Any) -> Any:
        values = items(s)
        return [body(item) for item in values] if isinstance(values, list) else []

    return run


def _reduce(items: Fn, body: Fn, init: Any, _argc: int) -> Fn:
    def run(s: Any) -> Any:
        values = items(s)
        if not isinstance(values, list):
            return init  # the raw third argument, not evaluated
        context: dict[str, Any] = {"accumulator": init}
        for item in values:
            context["current"] = item
            context["accumulator"] = body(context)
        return context["accumulator"]

    return run


def _quantifier(op: str) -> Callable[[Fn, Fn, Any, int], Fn]:
    def build(items: Fn, body: Fn, _init: Any, argc: int) -> Fn:
        if argc < 2:
            return constant(op == "none").fn

        def run(s: Any) -> bool:
            values = items(s)
            if not isinstance(values, list):
                return op == "none"
            if op == "all":
                return bool(values) and all(to_bool(body(item)) for item in values)
            found = any(to_bool(body(item)) for item in values)
            return found if op == "some" else not found

        return run

    return build


_ITERATORS: dict[str, Callable[[Fn, Fn, Any, int], Fn]] = {
    "filter": _filter,
    "map": _map,
    "reduce": _reduce,
    "all": _quantifier("all"),
    "some": _quantifier("some"),
    "none": _quantifier("none"),
}


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

        def broken(_s: Any) -> tuple[Any, SplitInfo | None]:
            raise TargetingParseError(message)

        return broken
    compiler = _Compiler(scope, data.split_sites(scope.key, targeting))
    try:
        return compiler.tail(targeting, "/targeting")
    except RecursionError:
        raise checker.fail("/targeting", "the rule is nested too deeply") from None


__all__ = ["EvalState", "FlagScope", "TargetingParseError", "compile_targeting"]
