"""Customer writes: create, update, delete.

Plain functions over a SQLAlchemy session and already-checked arguments. They flush so ids
exist and constraint failures surface here, but never commit: the caller (a view today, a
command handler later) owns the transaction and rolls it back when an ``ApiError`` is raised.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import Conflict, NotFound
from ..fields import MAX_DB_INT
from ..models import Customer, Order, Review
from ..types import utcnow
from .preconditions import ExpectedVersions, require_version


def normalize_email(email: str) -> str:
    """Emails are stored trimmed and lower-cased, so uniqueness ignores case."""
    return email.strip().lower()


def customer_or_404(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id) if 0 < customer_id <= MAX_DB_INT else None
    if customer is None:
        raise NotFound(f"customer {customer_id} does not exist", field="customer_id")
    return customer


def _require_unique_email(session: Session, email: str, *, other_than: int | None = None) -> None:
    stmt = select(Customer.id).where(Customer.email == email)
    if other_than is not None:
        stmt = stmt.where(Customer.id != other_than)
    if session.scalar(stmt) is not None:
        raise Conflict(f"email {email!r} is already registered", field="email")


def _flush_or_duplicate_email(session: Session, email: str | None) -> None:
    # The pre-check handles the ordinary case; this reports a race lost to a concurrent
    # insert of the same email (the unique index is the real guard) as the same 409.
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"email {email!r} is already registered", field="email") from None


def create_customer(session: Session, *, email: str, name: str) -> Customer:
    email = normalize_email(email)
    _require_unique_email(session, email)
    customer = Customer(email=email, name=name, created_at=utcnow())
    session.add(customer)
    _flush_or_duplicate_email(session, email)
    return customer


def update_customer(
    session: Session,
    customer_id: int,
    *,
    email: str | None = None,
    name: str | None = None,
    expected_versions: ExpectedVersions = None,
) -> Customer:
    """Change the given fields (None means unchanged; neither is nullable)."""
    customer = customer_or_404(session, customer_id)
    require_version(f"customer {customer_id}", customer.version, expected_versions)
    if email is not None:
        email = normalize_email(email)
        _require_unique_email(session, email, other_than=customer.id)
        customer.email = email
    if name is not None:
        customer.name = name
    _flush_or_duplicate_email(session, email)
    return customer


def delete_customer(
    session: Session, customer_id: int, *, expected_versions: ExpectedVersions = None
) -> None:
    """Delete a customer who never ordered; their reviews stay, anonymised.

    Orders are history (and revenue), so a customer with any order is kept. Reviews
    belong to the product's rating, so they survive without their author.
    """
    customer = customer_or_404(session, customer_id)
    require_version(f"customer {customer_id}", customer.version, expected_versions)
    order_count = session.scalar(
        select(func.count()).select_from(Order).where(Order.customer_id == customer_id)
    )
    if order_count:
        raise Conflict(
            f"customer {customer_id} has {order_count} order(s) and cannot be deleted",
            field="customer_id",
        )
    session.execute(
        update(Review)
        .where(Review.customer_id == customer_id)
        .values(customer_id=None)
        .execution_options(synchronize_session="fetch")
    )
    session.delete(customer)
    try:
        session.flush()
    except IntegrityError:
        # An order placed concurrently now references the customer.
        raise Conflict(
            f"customer {customer_id} has orders and cannot be deleted", field="customer_id"
        ) from None
