"""verify reports exactly which rows drifted; repair fixes exactly those rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    Engine,
    delete,
    insert,
    select,
    update,
)

from cqrs_layer.core.sql import read_snapshot
from cqrs_layer.read.backfill import backfill
from cqrs_layer.read.verify import RepairCounts, values_equal, verify, verify_in

from .library_schema import Library

STAMP = datetime(2020, 1, 1)


@pytest.fixture
def library(engine: Engine) -> Iterator[Library]:
    """Five authors (1-4 with books, 5 without), the read model backfilled, stamped."""
    library = Library("rv")
    library.metadata.drop_all(engine)
    library.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(library.authors), [{"id": i, "name": f"Author {i}"} for i in range(1, 6)]
        )
        conn.execute(
            insert(library.books),
            [
                {
                    "id": n,
                    "author_id": 1 + n % 4,
                    "pages": 10 * n,
                    "price": n / 3,
                    "published_at": datetime(2024, 1, n),
                }
                for n in range(1, 13)
            ],
        )
    backfill(engine, library.model)
    with engine.begin() as conn:
        conn.execute(update(library.stats).values(refreshed_at=STAMP))
    yield library
    library.metadata.drop_all(engine)


def drift(engine: Engine, library: Library) -> None:
    """Author 2's row lost, a row for nobody (99), author 3's numbers wrong."""
    s = library.stats
    with engine.begin() as conn:
        conn.execute(delete(s).where(s.c.author_id == 2))
        conn.execute(insert(s), {"author_id": 99, "name": "Ghost", "books": 1, "pages": 5})
        conn.execute(update(s).where(s.c.author_id == 3).values(books=7, name="Renamed"))


def test_a_freshly_backfilled_model_verifies_clean(engine: Engine, library: Library) -> None:
    report = verify(engine, library.model)

    assert report.ok
    assert (report.source_rows, report.table_rows) == (5, 5)
    assert list(report.differences()) == []
    assert report.repaired is None


def test_verify_reports_missing_extra_and_different_rows_by_key(
    engine: Engine, library: Library
) -> None:
    drift(engine, library)

    report = verify(engine, library.model)

    assert not report.ok
    assert [d.key for d in report.missing] == [{"author_id": 2}]
    assert report.missing[0].expected is not None
    assert report.missing[0].expected["books"] == 3
    assert [d.key for d in report.extra] == [{"author_id": 99}]
    assert report.extra[0].actual is not None
    assert report.extra[0].actual["name"] == "Ghost"
    [different] = report.different
    assert different.key == {"author_id": 3}
    assert different.columns == ("name", "books")
    assert different.to_dict()["columns"] == {
        "name": {"expected": "Author 3", "actual": "Renamed"},
        "books": {"expected": 3, "actual": 7},
    }


def test_verify_in_checks_on_the_callers_connection(engine: Engine, library: Library) -> None:
    drift(engine, library)

    with read_snapshot(engine) as connection:
        report = verify_in(connection, library.model)

    assert report.to_dict() == verify(engine, library.model).to_dict()
    assert (len(report.missing), len(report.extra), len(report.different)) == (1, 1, 1)
    assert report.repaired is None


def test_repair_fixes_exactly_the_differing_rows(engine: Engine, library: Library) -> None:
    drift(engine, library)

    report = verify(engine, library.model, repair=True)

    assert report.repaired == RepairCounts(inserted=1, deleted=1, updated=1)
    assert (len(report.missing), len(report.extra), len(report.different)) == (1, 1, 1)
    assert verify(engine, library.model).ok
    s = library.stats
    with engine.connect() as conn:
        stamps = dict(conn.execute(select(s.c.author_id, s.c.refreshed_at)).all())
    # Untouched rows keep their stamp, proving they were not rewritten; the inserted row
    # has none; the updated row only had its differing columns set.
    assert stamps == {1: STAMP, 2: None, 3: STAMP, 4: STAMP, 5: STAMP}


def test_repair_of_a_clean_model_changes_nothing(engine: Engine, library: Library) -> None:
    report = verify(engine, library.model, repair=True)

    assert report.ok
    assert report.repaired == RepairCounts(inserted=0, deleted=0, updated=0)


def test_floats_compare_within_the_tolerance(engine: Engine, library: Library) -> None:
    s = library.stats
    with engine.begin() as conn:
        conn.execute(update(s).where(s.c.author_id == 1).values(avg_price=s.c.avg_price + 1e-12))
        conn.execute(update(s).where(s.c.author_id == 4).values(avg_price=s.c.avg_price + 0.001))

    strict = verify(engine, library.model)
    loose = verify(engine, library.model, float_tolerance=0.01)

    assert [(d.key, d.columns) for d in strict.different] == [({"author_id": 4}, ("avg_price",))]
    assert loose.ok


def test_datetimes_compare_in_utc(engine: Engine, library: Library) -> None:
    s = library.stats
    with engine.begin() as conn:
        conn.execute(
            update(s).where(s.c.author_id == 1).values(last_published=datetime(2024, 1, 10))
        )

    [different] = verify(engine, library.model).different

    assert different.key == {"author_id": 1}
    assert different.columns == ("last_published",)
    assert different.to_dict()["columns"]["last_published"] == {
        "expected": "2024-01-12T00:00:00",
        "actual": "2024-01-10T00:00:00",
    }


@pytest.mark.parametrize(
    ("expected", "actual", "equal"),
    [
        (Decimal("3"), 3, True),
        (Decimal("2.5"), 2.5, True),
        (Decimal("2.5"), 2, False),
        (1.0, 1, True),
        (0.1 + 0.2, 0.3, True),
        (0.3, 0.31, False),
        (None, 0, False),
        ("1", 1, False),
        (datetime(2024, 1, 1, 12, tzinfo=UTC), datetime(2024, 1, 1, 12), True),
        (
            datetime(2024, 1, 1, 14, tzinfo=timezone(timedelta(hours=2))),
            datetime(2024, 1, 1, 12),
            True,
        ),
        (datetime(2024, 1, 1, 13, tzinfo=UTC), datetime(2024, 1, 1, 12), False),
    ],
)
def test_values_are_normalized_before_comparing(expected: Any, actual: Any, equal: bool) -> None:
    assert values_equal(expected, actual, 1e-9) is equal
