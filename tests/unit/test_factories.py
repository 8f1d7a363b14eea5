from legacy_app.extensions import db
from legacy_app.models import Product, Stock

from ..factories import OrderLineFactory, ProductFactory, ReviewFactory


def test_product_factory_creates_stock_row(app):
    product = ProductFactory(stock__quantity=7)
    db.session.commit()
    assert db.session.get(Stock, product.id).quantity == 7


def test_order_line_captures_product_price(app):
    line = OrderLineFactory(product__price_cents=555, quantity=2)
    db.session.commit()
    assert line.unit_price_cents == 555
    assert db.session.get(Product, line.product_id) is not None


def test_review_factory(app):
    review = ReviewFactory(rating=5)
    db.session.commit()
    assert review.product.reviews == [review]
