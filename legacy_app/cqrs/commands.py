"""The shop's commands: one per write endpoint, named for what the caller wants done.

Field limits are the request bodies' (:mod:`legacy_app.fields`), so a command built by any
caller (an endpoint, a script, a test) is refused before a handler runs if the same input
would have been refused by the API. Endpoints validate the body with the legacy body models
first, so their errors stay exactly the legacy ones; this is the second line, for callers
that dispatch commands directly.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from cqrs_layer import Command

from ..fields import MAX_DB_INT, Cents, DbId, Storable
from ..services.orders import MAX_LINE_QUANTITY, MAX_LINES

Sku = Annotated[str, Field(min_length=1, max_length=40), Storable]
Name = Annotated[str, Field(min_length=1, max_length=200), Storable]
Description = Annotated[str, Field(max_length=5000), Storable]
CategoryName = Annotated[str, Field(min_length=1, max_length=80), Storable]
Email = Annotated[str, Field(min_length=3, max_length=254), Storable]
#: Path ids come from Flask's ``<int:...>`` converter unbounded; the services answer 404
#: for ids beyond the column's range, so commands accept any int there.
PathId = int
#: A conditional write (HTTP If-Match): the versions it may overwrite; None: any.
ExpectedVersions = frozenset[int] | None


# -- catalog -------------------------------------------------------------------------------


class CreateProduct(Command):
    sku: Sku
    name: Name
    price_cents: Cents
    category_id: DbId
    description: Description = ""
    stock: Annotated[int, Field(ge=0, le=MAX_DB_INT)] = 0


class UpdateProduct(Command):
    """Change the given fields; None means unchanged (no field is nullable)."""

    product_id: PathId
    sku: Sku | None = None
    name: Name | None = None
    price_cents: Cents | None = None
    category_id: DbId | None = None
    description: Description | None = None
    expected_versions: ExpectedVersions = None


class DeleteProduct(Command):
    product_id: PathId
    expected_versions: ExpectedVersions = None


class RestockProduct(Command):
    product_id: PathId
    quantity: Annotated[int, Field(ge=1, le=1_000_000)]
    expected_versions: ExpectedVersions = None


class AddReview(Command):
    product_id: PathId
    rating: Annotated[int, Field(ge=1, le=5)]
    body: Description = ""
    customer_id: DbId | None = None


class CreateCategory(Command):
    name: CategoryName


# -- customers -----------------------------------------------------------------------------


class RegisterCustomer(Command):
    email: Email
    name: Name


class UpdateCustomer(Command):
    customer_id: PathId
    email: Email | None = None
    name: Name | None = None
    expected_versions: ExpectedVersions = None


class DeleteCustomer(Command):
    customer_id: PathId
    expected_versions: ExpectedVersions = None


# -- orders --------------------------------------------------------------------------------


class OrderLineRequest(BaseModel):
    """One line of a PlaceOrder (fits :class:`legacy_app.services.orders.LineRequest`)."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    product_id: DbId
    quantity: Annotated[int, Field(ge=1, le=MAX_LINE_QUANTITY)]


class PlaceOrder(Command):
    customer_id: DbId
    lines: Annotated[tuple[OrderLineRequest, ...], Field(min_length=1, max_length=MAX_LINES)]


class PayOrder(Command):
    order_id: PathId


class ShipOrder(Command):
    order_id: PathId


class CancelOrder(Command):
    order_id: PathId
