"""The structural diff kept in the audit."""

from __future__ import annotations

from experiments.flag_store import DiffOp, json_diff


def test_equal_documents_have_no_diff() -> None:
    assert json_diff({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}]}) == []


def test_a_changed_leaf_is_a_replace_at_its_pointer() -> None:
    assert json_diff({"a": {"b/c": 1}}, {"a": {"b/c": 2}}) == [DiffOp("replace", "/a/b~1c", 1, 2)]


def test_added_and_removed_keys_and_items() -> None:
    ops = json_diff({"a": 1, "l": [1, 2]}, {"b": 2, "l": [1]})
    assert ops == [
        DiffOp("remove", "/a", 1, None),
        DiffOp("remove", "/l/1", 2, None),
        DiffOp("add", "/b", None, 2),
    ]


def test_true_is_not_one() -> None:
    assert json_diff({"a": 1}, {"a": True}) == [DiffOp("replace", "/a", 1, True)]


def test_a_whole_document_added_or_removed() -> None:
    assert json_diff(None, {"a": 1}) == [DiffOp("add", "/", None, {"a": 1})]
    assert json_diff({"a": 1}, None) == [DiffOp("remove", "/", {"a": 1}, None)]


def test_summary_is_short() -> None:
    op = DiffOp("replace", "/state", "ENABLED", "DISABLED")
    assert op.summary() == '/state: "ENABLED" -> "DISABLED"'
    assert len(DiffOp("add", "/x", None, "y" * 100).summary()) < 60
