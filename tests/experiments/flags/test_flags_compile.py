"""The compiled closures against the interpreter flagd-core 1.0.0 uses (panzi-json-logic 1.0.1).

Every case evaluates one JsonLogic expression both ways on the same flagd context
and requires the same result (compared by `repr`, so `1`, `1.0` and `True` differ)
or the same exception type.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from json_logic import jsonLogic
from openfeature.contrib.tools.flagd.core.targeting.targeting import OPERATORS

from experiments.flags.compiler.data_reads import new_state
from experiments.flags.compiler.rules import FlagScope, TargetingParseError, compile_targeting

NOW = 1_700_000_000
FLAG = "demo-flag"
DATA: dict[str, Any] = {
    "region": "eu",
    "tenant_id": "globex",
    "features": {"s2s": True, "beta": False},
    "attributes": {"plan": "pro", "seats": 12},
    "n": 5,
    "f": 2.5,
    "zero": 0,
    "empty": "",
    "none": None,
    "items": [1, 2, 3, 4],
    "words": ["a", "bb", "ccc"],
    "people": [{"age": 30, "name": "ann"}, {"age": 17, "name": "bo"}],
    "nested": {"list": [{"x": 1}, {"x": None}], "deep": {"key": "v"}},
    "num_str": "12",
    "version": "2.1.0",
    "email": "ballmer@macrosoft.com",
}

CASES: list[Any] = [
    # truthiness through `!!` and `!`
    *({"!!": [value]} for value in (0, 1, -1, 0.0, "", "0", "a", [], [0], {}, None, True, False)),
    {"!": [{"var": "empty"}]},
    {"!": {"var": "items"}},
    # loose and strict equality
    {"==": [1, "1"]},
    {"==": [0, ""]},
    {"==": ["1", True]},
    {"==": [None, 0]},
    {"==": [None, None]},
    {"==": [[1], "1"]},
    {"==": [[1, 2], "1,2"]},
    {"==": [[1], [1]]},
    {"==": [{"var": "items"}, {"var": "items"}]},
    {"==": [{"var": "features.s2s"}, True]},
    {"==": [{"var": "features.s2s"}, "true"]},
    {"==": [{"var": "num_str"}, 12]},
    {"==": ["abc", None]},
    {"==": ["abc", {"var": "nested.deep"}]},
    {"!=": [{"var": "region"}, "us"]},
    {"!=": ["us", {"var": "region"}]},
    {"==": ["globex", {"var": "tenant_id"}]},
    {"===": [1, 1.0]},
    {"===": [1, True]},
    {"!==": ["1", 1]},
    # ordering, including "between" with three arguments
    {"<": [1, 2]},
    {"<": ["a", "b"]},
    {"<": ["10", 9]},
    {"<": [1, {"var": "n"}, 10]},
    {"<": [1, {"var": "n"}, 3]},
    {"<=": [5, {"var": "n"}, 5]},
    {">": [{"var": "f"}, 2, 1]},
    {">=": [None, 0]},
    {"<": [{"var": "none"}, {"var": "empty"}]},
    {"<": [[2], 3]},
    {">": ["b", ["a"]]},
    # arithmetic and coercion
    {"+": [1, "2", 3.5]},
    {"+": []},
    {"+": ["inf"]},
    {"+": [True, True]},
    {"*": [2, "3"]},
    {"-": [5]},
    {"-": [5, "2"]},
    {"-": [True]},
    {"/": [1, 4]},
    {"/": [1, 0]},
    {"%": [-7, 3]},
    {"%": [7, 0]},
    {"min": [3, "1", 2]},
    {"max": []},
    {"max": [{"var": "items"}]},
    {"+": [{"var": "items"}]},
    {"+": [[5]]},
    # strings
    {"cat": ["a", 1, 2.5, 1.0, True, None, [1, [2, 3]], {"var": "nested.deep"}]},
    {"cat": [{"var": "$flagd.flagKey"}, {"var": "tenant_id"}]},
    {"substr": ["voxroute", 3]},
    {"substr": ["voxroute", -5, 2]},
    {"substr": ["voxroute", 1, -2]},
    {"substr": ["voxroute", 10]},
    {"substr": ["voxroute", "x", 2]},
    {"substr": ["voxroute", 2, "x"]},
    {"substr": [12345, -2]},
    {"in": ["eu", ["us", "eu"]]},
    {"in": [{"var": "region"}, ["us", "ap"]]},
    {"in": [{"var": "n"}, [5.0, 6]]},
    {"in": [True, [1]]},
    {"in": ["bal", {"var": "email"}]},
    {"in": [1, "a1b"]},
    {"in": [True, "True"]},
    {"in": ["x", None]},
    {"in": [{"var": "items"}, [[1, 2, 3, 4]]]},
    # var: paths, indexes, defaults, the whole data
    {"var": "features.s2s"},
    {"var": "attributes.seats"},
    {"var": "items.2"},
    {"var": "items.9"},
    {"var": "items.-1"},
    {"var": "items.01"},
    {"var": "items.length"},
    {"var": "words.1.length"},
    {"var": "region.0"},
    {"var": "region.length"},
    {"var": "nested.list.1.x"},
    {"var": ["nested.list.1.x", "dflt"]},
    {"var": ["missing.path", {"cat": ["d", 1]}]},
    {"var": ["none", 7]},
    {"var": ["zero", 7]},
    {"var": ["empty", 7]},
    {"var": ["missing", [1, 2]]},
    {"var": 1},
    {"var": [1.5]},
    {"var": [True]},
    {"var": ""},
    {"var": []},
    {"var": [None, "x"]},
    {"var": "targetingKey"},
    {"var": "$flagd.flagKey"},
    {"var": "$flagd.timestamp"},
    {"var": "$flagd"},
    {"var": "$flagd.flagKey.length"},
    {"var": {"cat": ["features", ".", "s2s"]}},
    {"var": [{"var": "region"}, "none"]},
    {"var": ["a", 1, 2]},
    {"var": "a..b"},
    # missing / missing_some
    {"missing": ["region", "nope", "empty", "zero", "none"]},
    {"missing": [["region", "nested.deep.key", "nested.deep.x"]]},
    {"missing": []},
    {"missing_some": [1, ["region", "nope"]]},
    {"missing_some": [2, ["region", "nope", "zilch"]]},
    {"missing_some": [1, "region"]},
    # if chains, and / or
    {"if": [True, "yes", "no"]},
    {"if": [{"var": "zero"}, "yes", "no"]},
    {"if": [{"var": "zero"}, "yes"]},
    {"if": [{"var": "n"}]},
    {"if": []},
    {"if": [False, "a", {"var": "empty"}, "b", {"var": "n"}, "c", "d"]},
    {"if": [False, "a", False, "b"]},
    {"?:": [{"var": "features.beta"}, 1, 2]},
    {"if": {"var": "region"}},
    {"and": [1, "a", {"var": "n"}]},
    {"and": [1, {"var": "zero"}, {"/": [1, 0]}]},
    {"and": []},
    {"or": [0, "", {"var": "region"}]},
    {"or": [0, {"var": "empty"}]},
    {"or": []},
    # iterating forms: the body sees each item
    {"filter": [{"var": "items"}, {">": [{"var": ""}, 2]}]},
    {"filter": [{"var": "region"}, True]},
    {"filter": [{"var": "items"}]},
    {"map": [{"var": "items"}, {"*": [{"var": ""}, 2]}]},
    {"map": [{"var": "people"}, {"var": "name"}]},
    {"map": [{"var": "items"}]},
    {"map": []},
    {"reduce": [{"var": "items"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]},
    {"reduce": [{"var": "nope"}, {"+": [1, 2]}, {"var": "x"}]},
    {"reduce": [{"var": "items"}, {"var": ""}]},
    {"all": [{"var": "items"}, {">": [{"var": ""}, 0]}]},
    {"all": [[], True]},
    {"all": [{"var": "items"}]},
    {"some": [{"var": "people"}, {"<": [{"var": "age"}, 18]}]},
    {"none": [{"var": "people"}, {"<": [{"var": "age"}, 10]}]},
    {"none": [{"var": "people"}]},
    {"some": [{"var": "region"}, True]},
    {"map": [{"var": "items"}, {"var": "$flagd.flagKey"}]},
    # merge, log-free literals, odd shapes
    {"merge": [1, [2, 3], [[4]], {"var": "words"}]},
    {"merge": []},
    {"cat": {"var": "region"}},
    {"+": {"var": "n"}},
    [1, {"var": "n"}, [{"var": "region"}]],
    {"a": 1, "b": 2},
    {},
    # flagd operators
    {"starts_with": [{"var": "email"}, "ballmer"]},
    {"ends_with": [{"var": "email"}, ".com"]},
    {"starts_with": [{"var": "n"}, "5"]},
    {"starts_with": ["abc"]},
    {"ends_with": ["abc", "c", "x"]},
    {"sem_ver": [{"var": "version"}, ">=", "2.0.0"]},
    {"sem_ver": [{"var": "version"}, "~", "2.1.5"]},
    {"sem_ver": [{"var": "version"}, "^", "v3"]},
    {"sem_ver": [{"var": "version"}, "=", "2.1"]},
    {"sem_ver": [{"var": "version"}, "===", "2.1.0"]},
    {"sem_ver": [{"var": "f"}, "<", "3"]},
    {"sem_ver": [{"var": "region"}, "=", "1.0.0"]},
    {"sem_ver": ["1.0.0", "="]},
    {"sem_ver": ["1.0.0-alpha", "<", "1.0.0"]},
    {"fractional": [{"var": "tenant_id"}, ["a", 50], ["b", 50]]},
    {"fractional": [["a", 1], ["b", 1]]},
    {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, "x"]}, ["a", 3], ["b", 0], ["c", -2]]},
    {"fractional": [{"var": "nope"}, ["a", 1]]},
    {"fractional": [{"var": "n"}, ["a", 1]]},
    {"fractional": ["seed", ["a", 1.5]]},
    {"fractional": ["seed", ["a", True]]},
    {"fractional": ["seed", ["a", 2_147_483_647], ["b", 1]]},
    {"fractional": ["seed", "a"]},
    {"fractional": ["seed"]},
    {"fractional": []},
    {"fractional": [""]},
    {"fractional": ["seed", [{"var": "region"}, {"var": "n"}], ["b", 1]]},
    {"fractional": [{"var": "people.0.name"}, [["x"], 1]]},
    {"map": [{"var": "people"}, {"fractional": [{"var": "name"}, ["a", 1], ["b", 1]]}]},
    {"map": [[1], {"fractional": [["a", 1]]}]},
    {"map": [[{"targetingKey": "k"}], {"fractional": [["a", 1], ["b", 1]]}]},
    # fused fast paths: attribute reads with constant operands
    *({"cat": ["x-", {"var": key}]} for key in ("n", "f", "none", "features.s2s", "items", "nope")),
    *(
        {"==": [{"var": key}, const]}
        for key in ("n", "f", "features.s2s", "none", "num_str")
        for const in (5, 2.5, True, None, "12", 12)
    ),
    *(
        {"!=": [const, {"var": key}]}
        for key in ("region", "nested.deep", "features.beta", "nope")
        for const in ("eu", False, 0, None)
    ),
    *(
        {"in": [{"var": key}, ["eu", "12", "True"]]}
        for key in ("region", "num_str", "n", "none", "features.s2s", "items", "nested.deep.key")
    ),
    {"==": [{"var": "region.length"}, 2]},
    {"==": [{"var": "items.1"}, 2]},
    {"==": [{"var": "targetingKey"}, "session-42"]},
    # unknown operators fail when reached, not before
    {"nope": [1]},
    {"if": [False, {"nope": [1]}, "fine"]},
    {"$ref": "missing"},
    {"var.x": [1]},
    {"if.x": [1]},
    {"==": [{"/": [1, 0]}, {"nope": []}]},
    {"<": [{"var": "nested"}, {"var": "items"}]},
]


def _data(targeting_key: str | None) -> dict[str, Any]:
    data = dict(DATA)
    data["$flagd"] = {"flagKey": FLAG, "timestamp": NOW}
    data["targetingKey"] = targeting_key
    return data


def _interpreted(logic: Any, targeting_key: str | None) -> tuple[str, str]:
    try:
        return "ok", repr(jsonLogic(logic, _data(targeting_key), OPERATORS))
    except ReferenceError:
        return "parse-error", ""
    except Exception as exc:
        return "error", type(exc).__name__


def _compiled(logic: Any, targeting_key: str | None) -> tuple[str, str]:
    scope = FlagScope(key=FLAG, variants={}, strict=False)
    rule = compile_targeting({"if": [True, logic]}, scope)
    assert rule is not None
    try:
        value, _split, _metadata = rule(new_state(FLAG, targeting_key, DATA, NOW))
    except TargetingParseError:
        return "parse-error", ""
    except Exception as exc:
        return "error", type(exc).__name__
    return "ok", repr(value)


@pytest.mark.parametrize("targeting_key", [None, "session-42"])
@pytest.mark.parametrize("logic", CASES, ids=lambda logic: repr(logic)[:60])
def test_compiled_rule_matches_the_interpreter(logic: Any, targeting_key: str | None) -> None:
    assert _compiled(logic, targeting_key) == _interpreted(logic, targeting_key)


def test_constant_subtrees_are_folded_into_one_value() -> None:
    scope = FlagScope(key=FLAG, variants={"a1b2": 1}, strict=True)
    rule = compile_targeting({"cat": ["a", {"+": [0, 1]}, "b", {"-": [4, 2]}]}, scope)
    assert rule is not None
    # a folded rule does not read the data at all
    assert rule(None) == ("a1b2", None, None)


def test_a_constant_list_is_a_new_object_on_every_evaluation() -> None:
    scope = FlagScope(key=FLAG, variants={}, strict=False)
    rule = compile_targeting({"merge": [[1], [2]]}, scope)
    assert rule is not None
    first = rule(new_state(FLAG, None, {}, NOW))[0]
    second = rule(new_state(FLAG, None, {}, NOW))[0]
    assert first == second == [1, 2]
    assert first is not second


OPERATORS_TO_DRAW = [
    *("==", "!=", "===", "!==", "<", ">", "<=", ">=", "!", "!!", "+", "*", "-", "/", "%"),
    *("in", "min", "max", "cat", "substr", "merge", "if", "?:", "and", "or", "var"),
    *("missing", "missing_some", "filter", "map", "reduce", "all", "some", "none"),
    *("starts_with", "ends_with", "sem_ver", "fractional", "nope", "var.x"),
]
VAR_KEYS = ["", "n", "f", "zero", "empty", "none", "region", "items", "words.1", "features.s2s"]
VAR_KEYS += ["nested.deep.key", "items.length", "targetingKey", "$flagd.flagKey", "missing"]
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 5),
    st.sampled_from([0.5, 2.5, -1.0]),
    st.sampled_from(["", "a", "eu", "1", "2.0.0", "=", ">", "abc", *VAR_KEYS]),
    st.builds(lambda key: {"var": key}, st.sampled_from(VAR_KEYS)),
)
RULES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.builds(
            lambda op, args: {op: args},
            st.sampled_from(OPERATORS_TO_DRAW),
            st.lists(inner, max_size=4),
        ),
        st.builds(lambda op, arg: {op: arg}, st.sampled_from(OPERATORS_TO_DRAW), inner),
        st.lists(inner, max_size=3),
    ),
    max_leaves=14,
)


@settings(max_examples=600, derandomize=True, database=None, deadline=None)
@given(logic=RULES, targeting_key=st.sampled_from([None, "session-42"]))
def test_generated_rules_match_the_interpreter(logic: Any, targeting_key: str | None) -> None:
    assert _compiled(logic, targeting_key) == _interpreted(logic, targeting_key)
