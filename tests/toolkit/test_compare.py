"""Normalization and structured diffs of two answers (no database needed)."""

from __future__ import annotations

import pytest

from cqrs_layer import ComparisonOptions
from cqrs_layer.rollout.diff import Answer, diff_answers, diff_data, path_matches, shorten


def entries(legacy: object, new: object, **options: object) -> list[dict[str, object]]:
    return diff_data(legacy, new, ComparisonOptions(compare_status=False, **options)).entries  # type: ignore[arg-type]


def test_equal_answers_have_an_empty_diff() -> None:
    body = {"id": 1, "tags": ["a", "b"], "price": {"cents": 1250}, "note": None}
    diff = diff_answers(Answer(200, body), Answer(200, dict(body)))
    assert (diff.matched, diff.entries, diff.truncated) == (True, [], False)


def test_each_kind_of_difference_is_named_with_its_path() -> None:
    legacy = {"id": 1, "title": "Dune", "gone": True, "items": [1, 2, 3], "n": 5}
    new = {"id": 1, "title": "Dune!", "added": "x", "items": [1, 2], "n": "5"}
    assert entries(legacy, new) == [
        {"path": "title", "kind": "changed", "legacy": "Dune", "new": "Dune!"},
        {"path": "gone", "kind": "missing", "legacy": True, "new": None},
        {"path": "items.2", "kind": "missing", "legacy": 3, "new": None},
        {"path": "n", "kind": "type", "legacy": 5, "new": "5"},
        {"path": "added", "kind": "extra", "legacy": None, "new": "x"},
    ]


def test_status_codes_are_compared_and_can_be_ignored() -> None:
    legacy, new = Answer(404, {"error": "x"}), Answer(200, {"error": "x"})
    assert diff_answers(legacy, new).entries == [
        {"path": "$status", "kind": "changed", "legacy": 404, "new": 200}
    ]
    assert diff_answers(legacy, new, ComparisonOptions(ignore=["$status"])).matched
    assert diff_answers(legacy, new, ComparisonOptions(compare_status=False)).matched


def test_a_body_of_another_type_is_one_type_entry_at_the_root() -> None:
    diff = diff_answers(Answer(404, "<h1>Not Found</h1>"), Answer(404, {"error": "no"}))
    assert diff.entries == [
        {"path": "$", "kind": "type", "legacy": "<h1>Not Found</h1>", "new": {"error": "no"}}
    ]


def test_ignore_paths_with_wildcards() -> None:
    legacy = {"items": [{"id": 1, "updated_at": "t1"}, {"id": 2, "updated_at": "t2"}], "at": 1}
    new = {"items": [{"id": 1, "updated_at": "u1"}, {"id": 2}], "at": 2}
    assert entries(legacy, new, ignore=["items.*.updated_at", "at"]) == []
    assert entries(legacy, new, ignore=["items.0.updated_at", "at"]) == [
        {"path": "items.1.updated_at", "kind": "missing", "legacy": "t2", "new": None}
    ]


def test_float_tolerance_applies_to_floats_not_integers() -> None:
    assert entries({"avg": 2.5000001}, {"avg": 2.5}, float_tolerance=1e-6) == []
    assert entries({"avg": 2.51}, {"avg": 2.5}, float_tolerance=1e-6) == [
        {"path": "avg", "kind": "changed", "legacy": 2.51, "new": 2.5}
    ]
    assert entries({"big": 1000.0}, {"big": 1001.0}, relative_tolerance=0.01) == []
    # Integers (money in cents, counts) stay exact whatever the tolerance.
    assert entries({"cents": 100}, {"cents": 101}, float_tolerance=5) == [
        {"path": "cents", "kind": "changed", "legacy": 100, "new": 101}
    ]
    assert entries({"n": 2}, {"n": 2.0}) == []  # one JSON number


def test_unordered_lists_match_as_multisets_at_declared_paths_only() -> None:
    legacy = {"tags": ["b", "a", "a"], "rows": [{"id": 2, "at": "x"}, {"id": 1, "at": "y"}]}
    new = {"tags": ["a", "b", "a"], "rows": [{"id": 1, "at": "q"}, {"id": 2, "at": "r"}]}
    options = {"unordered": ["tags", "rows"], "ignore": ["rows.*.at"]}
    assert entries(legacy, new, **options) == []
    assert entries(legacy, new, ignore=["rows.*.at"]) == [
        {"path": "tags.0", "kind": "changed", "legacy": "b", "new": "a"},
        {"path": "tags.1", "kind": "changed", "legacy": "a", "new": "b"},
        {"path": "rows.0.id", "kind": "changed", "legacy": 2, "new": 1},
        {"path": "rows.1.id", "kind": "changed", "legacy": 1, "new": 2},
    ]


def test_unordered_lists_report_what_is_really_different() -> None:
    legacy = {"items": [{"id": 1, "q": 1}, {"id": 2, "q": 2}, {"id": 3, "q": 3}]}
    new = {"items": [{"id": 3, "q": 3}, {"id": 2, "q": 20}, {"id": 1, "q": 1}, {"id": 4, "q": 4}]}
    assert entries(legacy, new, unordered=["items"]) == [
        {"path": "items.1.q", "kind": "changed", "legacy": 2, "new": 20},
        {"path": "items.3", "kind": "extra", "legacy": None, "new": {"id": 4, "q": 4}},
    ]


def test_unordered_lists_honour_the_float_tolerance() -> None:
    legacy = {"p": [{"v": 1.0000001}, {"v": 2.0}]}
    new = {"p": [{"v": 2.0}, {"v": 1.0}]}
    assert entries(legacy, new, unordered=["p"], float_tolerance=1e-3) == []


def test_a_diff_is_truncated_to_max_diffs() -> None:
    legacy = {f"k{i}": i for i in range(10)}
    new = {f"k{i}": -i - 1 for i in range(10)}
    diff = diff_data(legacy, new, ComparisonOptions(compare_status=False, max_diffs=3))
    assert [entry["path"] for entry in diff.entries] == ["k0", "k1", "k2"]
    assert diff.truncated is True
    assert diff.to_json()["truncated"] is True


def test_long_values_are_shortened_in_diff_entries() -> None:
    long_text = "x" * 500
    [entry] = entries({"body": long_text}, {"body": "short"})
    assert entry["legacy"] == '"' + "x" * 199 + "…"
    assert entry["new"] == "short"
    assert shorten([1, 2]) == [1, 2]


def test_path_patterns() -> None:
    assert path_matches("items.*.updated_at", ("items", "3", "updated_at"))
    assert not path_matches("items.*.updated_at", ("items", "3", "id"))
    assert not path_matches("items.*", ("items",))
    assert path_matches("$", ())


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="tolerances must be >= 0"):
        ComparisonOptions(float_tolerance=-1)
    with pytest.raises(ValueError, match="max_diffs must be >= 1"):
        ComparisonOptions(max_diffs=0)
    assert ComparisonOptions(ignore=["a", "b"]).ignore == ("a", "b")
