"""Comparing the legacy answer with the read model's: normalization and a structured diff.

Both answers are plain JSON-like data (dicts, lists, strings, numbers, booleans, None) plus
the HTTP status. What may legitimately differ is declared per endpoint in
:class:`ComparisonOptions`: paths to ignore, a float tolerance, and lists whose order does not
matter. Paths are dotted (``items.3.title``); list items are numbered from 0; a ``*``
segment in a declared path matches any one key or index (``items.*.updated_at``). The body
itself is :data:`ROOT`, the status code is :data:`STATUS`.

A diff is a list of entries ``{"path", "kind", "legacy", "new"}``, ``kind`` being
``changed`` (same type, other value), ``missing`` (only the legacy answer has it),
``extra`` (only the new answer has it) or ``type`` (different JSON types). It is bounded:
at most ``max_diffs`` entries, long values shortened, so one bad response cannot bloat
the comparison history.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ROOT = "$"
STATUS = "$status"
TRUNCATED_MARK = "…"
DiffKind = Literal["changed", "missing", "extra", "type"]
DiffEntry = dict[str, Any]
#: Values longer than this (as JSON) are shortened in diff entries.
MAX_VALUE_CHARS = 200
#: Lists whose unordered matching would cost more than this many pairings are compared
#: by their canonical (sorted) order instead: a comparison must stay cheap.
MAX_UNORDERED_PAIRINGS = 10_000


@dataclass(frozen=True, slots=True)
class ComparisonOptions:
    """What may differ between the legacy answer and the new one without being a mismatch."""

    ignore: Sequence[str] = ()
    #: Numbers differing by at most this (absolute) are equal; 0 means exact.
    float_tolerance: float = 0.0
    #: Relative tolerance, as in math.isclose; applies on top of the absolute one.
    relative_tolerance: float = 0.0
    #: Paths of lists compared as multisets.
    unordered: Sequence[str] = ()
    compare_status: bool = True
    max_diffs: int = 20

    def __post_init__(self) -> None:
        # Accept any iterable of paths (lists are natural in declarations) but keep them hashable.
        object.__setattr__(self, "ignore", tuple(self.ignore))
        object.__setattr__(self, "unordered", tuple(self.unordered))
        if self.float_tolerance < 0 or self.relative_tolerance < 0:
            raise ValueError("tolerances must be >= 0")
        if self.max_diffs < 1:
            raise ValueError("max_diffs must be >= 1")


@dataclass(frozen=True, slots=True)
class Answer:
    """One path's answer to the request: status and decoded body (JSON data or text)."""

    status: int
    body: Any


@dataclass(slots=True)
class Diff:
    entries: list[DiffEntry] = field(default_factory=list)
    truncated: bool = False

    @property
    def matched(self) -> bool:
        return not self.entries

    def to_json(self) -> dict[str, Any]:
        return {"entries": self.entries, "truncated": self.truncated}


class _DiffFull(Exception):
    """Raised to stop walking once ``max_diffs`` entries are collected."""


def diff_answers(legacy: Answer, new: Answer, options: ComparisonOptions | None = None) -> Diff:
    """The diff between two answers; empty when they agree under ``options``."""
    options = options or ComparisonOptions()
    walker = _Walker(options)
    try:
        status_compared = options.compare_status and not walker.ignored((STATUS,))
        if status_compared and legacy.status != new.status:
            walker.add(STATUS, "changed", legacy.status, new.status)
        walker.walk(legacy.body, new.body, ())
    except _DiffFull:
        walker.diff.truncated = True
    return walker.diff


def diff_data(legacy: Any, new: Any, options: ComparisonOptions | None = None) -> Diff:
    """The diff between two JSON-like values (no status)."""
    return diff_answers(
        Answer(0, legacy), Answer(0, new), options or ComparisonOptions(compare_status=False)
    )


def path_matches(pattern: str, path: tuple[str, ...]) -> bool:
    """Whether a dotted pattern (``*`` = any one segment) names ``path`` exactly."""
    return _segments_match(_split(pattern), path)


def shorten(value: Any, limit: int = MAX_VALUE_CHARS) -> Any:
    """``value`` if its JSON is short, else a string cut at ``limit`` characters."""
    encoded = json.dumps(value, sort_keys=True, default=str)
    if len(encoded) <= limit:
        return value
    return encoded[:limit] + TRUNCATED_MARK


def _split(pattern: str) -> tuple[str, ...]:
    return tuple(segment for segment in pattern.split(".") if segment and segment != ROOT)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path) if path else ROOT


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


class _Walker:
    def __init__(self, options: ComparisonOptions) -> None:
        self.options = options
        self.ignore = [_split(p) for p in options.ignore]
        self.unordered = [_split(p) for p in options.unordered]
        self.diff = Diff()

    def ignored(self, path: tuple[str, ...]) -> bool:
        return any(_segments_match(pattern, path) for pattern in self.ignore)

    def add(self, path: str, kind: DiffKind, legacy: Any, new: Any) -> None:
        if len(self.diff.entries) >= self.options.max_diffs:
            raise _DiffFull
        entry = {"path": path, "kind": kind, "legacy": shorten(legacy), "new": shorten(new)}
        self.diff.entries.append(entry)

    def walk(self, legacy: Any, new: Any, path: tuple[str, ...]) -> None:
        if self.ignored(path):
            return
        legacy_type, new_type = _json_type(legacy), _json_type(new)
        if legacy_type != new_type:
            self.add(_dotted(path), "type", legacy, new)
        elif legacy_type == "object":
            self._walk_objects(legacy, new, path)
        elif legacy_type == "array":
            if any(_segments_match(pattern, path) for pattern in self.unordered):
                self._walk_unordered(list(legacy), list(new), path)
            else:
                self._walk_lists(list(legacy), list(new), path)
        elif legacy_type == "number":
            if not self._numbers_equal(legacy, new):
                self.add(_dotted(path), "changed", legacy, new)
        elif legacy != new:
            self.add(_dotted(path), "changed", legacy, new)

    def _numbers_equal(self, legacy: float, new: float) -> bool:
        if isinstance(legacy, int) and isinstance(new, int):
            return legacy == new  # integers (cents, counts) are exact whatever the tolerance
        return math.isclose(
            legacy,
            new,
            rel_tol=self.options.relative_tolerance,
            abs_tol=self.options.float_tolerance,
        )

    def _walk_objects(
        self, legacy: dict[Any, Any], new: dict[Any, Any], path: tuple[str, ...]
    ) -> None:
        for key in legacy:
            child = (*path, str(key))
            if key in new:
                self.walk(legacy[key], new[key], child)
            elif not self.ignored(child):
                self.add(_dotted(child), "missing", legacy[key], None)
        for key in new:
            child = (*path, str(key))
            if key not in legacy and not self.ignored(child):
                self.add(_dotted(child), "extra", None, new[key])

    def _walk_lists(self, legacy: list[Any], new: list[Any], path: tuple[str, ...]) -> None:
        for index, (old_item, new_item) in enumerate(zip(legacy, new, strict=False)):
            self.walk(old_item, new_item, (*path, str(index)))
        self._report_leftovers(
            [(i, legacy[i]) for i in range(len(new), len(legacy))],
            [(i, new[i]) for i in range(len(legacy), len(new))],
            path,
        )

    def _walk_unordered(self, legacy: list[Any], new: list[Any], path: tuple[str, ...]) -> None:
        """Match items as a multiset: exact (normalized) matches first, then items equal
        within tolerance; what is left is paired in canonical order and diffed."""
        unmatched_new = {
            index: self._canonical(item, (*path, str(index))) for index, item in enumerate(new)
        }
        by_key: dict[str, list[int]] = {}
        for index, key in unmatched_new.items():
            by_key.setdefault(key, []).append(index)
        leftover_legacy: list[tuple[int, Any]] = []
        for index, item in enumerate(legacy):
            candidates = by_key.get(self._canonical(item, (*path, str(index))))
            if candidates:
                del unmatched_new[candidates.pop(0)]
            else:
                leftover_legacy.append((index, item))
        leftover_new = [(index, new[index]) for index in unmatched_new]
        if len(leftover_legacy) * len(leftover_new) <= MAX_UNORDERED_PAIRINGS:
            leftover_legacy, leftover_new = self._match_within_tolerance(
                leftover_legacy, leftover_new, path
            )
        leftover_legacy.sort(key=lambda pair: self._canonical(pair[1], path))
        leftover_new.sort(key=lambda pair: self._canonical(pair[1], path))
        paired = min(len(leftover_legacy), len(leftover_new))
        for (index, old_item), (_, new_item) in zip(
            leftover_legacy[:paired], leftover_new[:paired], strict=True
        ):
            self.walk(old_item, new_item, (*path, str(index)))
        self._report_leftovers(leftover_legacy[paired:], leftover_new[paired:], path)

    def _match_within_tolerance(
        self, legacy: list[tuple[int, Any]], new: list[tuple[int, Any]], path: tuple[str, ...]
    ) -> tuple[list[tuple[int, Any]], list[tuple[int, Any]]]:
        remaining_new = list(new)
        remaining_legacy: list[tuple[int, Any]] = []
        for index, item in legacy:
            for position, (_, candidate) in enumerate(remaining_new):
                probe = _Walker(self.options)
                try:
                    probe.walk(item, candidate, (*path, str(index)))
                except _DiffFull:
                    continue
                if probe.diff.matched:
                    del remaining_new[position]
                    break
            else:
                remaining_legacy.append((index, item))
        return remaining_legacy, remaining_new

    def _report_leftovers(
        self,
        legacy: Iterable[tuple[int, Any]],
        new: Iterable[tuple[int, Any]],
        path: tuple[str, ...],
    ) -> None:
        for index, item in legacy:
            child = (*path, str(index))
            if not self.ignored(child):
                self.add(_dotted(child), "missing", item, None)
        for index, item in new:
            child = (*path, str(index))
            if not self.ignored(child):
                self.add(_dotted(child), "extra", None, item)

    def _canonical(self, value: Any, path: tuple[str, ...]) -> str:
        """A sort/match key for ``value`` with ignored paths removed and nested unordered
        lists sorted, so equal-under-options items get equal keys (tolerance aside)."""
        return json.dumps(self._normalized(value, path), sort_keys=True, default=str)

    def _normalized(self, value: Any, path: tuple[str, ...]) -> Any:
        if isinstance(value, dict):
            return {
                str(key): self._normalized(item, (*path, str(key)))
                for key, item in value.items()
                if not self.ignored((*path, str(key)))
            }
        if isinstance(value, list | tuple):
            items = [
                self._normalized(item, (*path, str(index)))
                for index, item in enumerate(value)
                if not self.ignored((*path, str(index)))
            ]
            if any(_segments_match(pattern, path) for pattern in self.unordered):
                items.sort(key=lambda item: json.dumps(item, sort_keys=True, default=str))
            return items
        if isinstance(value, float) and value.is_integer():
            return int(value)  # 2.0 and 2 are the same JSON number
        return value


def _segments_match(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(pattern) == len(path) and all(
        want in ("*", got) for want, got in zip(pattern, path, strict=True)
    )
