"""factory-boy factories for every shop model, bound to Flask-SQLAlchemy's session."""

from __future__ import annotations

from datetime import UTC, datetime

import factory
from factory.alchemy import SQLAlchemyModelFactory

from legacy_app.extensions import db
from legacy_app.models import (
    Category,
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    Review,
    Stock,
)


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


class CategoryFactory(BaseFactory):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Category {n:03d}")


class ProductFactory(BaseFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n:05d}")
    description = ""
    price_cents = 1000
    category = factory.SubFactory(CategoryFactory)
    stock = factory.RelatedFactory(
        "tests.factories.StockFactory", factory_related_name="product", quantity=10
    )


class StockFactory(BaseFactory):
    class Meta:
        model = Stock

    product = factory.SubFactory(ProductFactory, stock=None)
    quantity = 10


class CustomerFactory(BaseFactory):
    class Meta:
        model = Customer

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    name = factory.Sequence(lambda n: f"Customer {n}")


class OrderFactory(BaseFactory):
    class Meta:
        model = Order

    customer = factory.SubFactory(CustomerFactory)
    status = OrderStatus.PLACED.value
    created_at = factory.LazyFunction(lambda: datetime.now(UTC))


class OrderLineFactory(BaseFactory):
    class Meta:
        model = OrderLine

    order = factory.SubFactory(OrderFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = 1
    unit_price_cents = factory.SelfAttribute("product.price_cents")


class ReviewFactory(BaseFactory):
    class Meta:
        model = Review

    product = factory.SubFactory(ProductFactory)
    customer_id = None
    rating = 4
    body = ""
