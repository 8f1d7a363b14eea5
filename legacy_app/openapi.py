"""The OpenAPI 3.1 document of the shop's API, the machine-readable twin of docs/api.md.

Written by hand as data (not generated from the views) so it states the contract the views
must keep; tests/api/test_openapi.py checks that it lists exactly the routes the app serves.
"""

from __future__ import annotations

from typing import Any

from .fields import MAX_DB_INT, WHITESPACE

Schema = dict[str, Any]

OPENAPI_VERSION = "3.1.0"
MAX_PAGE = 1_000_000

# --- small builders, so each operation below reads like its line in docs/api.md -------------


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def integer(minimum: int | None = None, maximum: int | None = None) -> Schema:
    schema: Schema = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def db_id() -> Schema:
    """An id in a body or query: ids are 32-bit, so larger ones are refused as input."""
    return integer(1, MAX_DB_INT)


def _char_class(chars: str, *, negated: bool = False) -> str:
    """A regex character class of ``chars``, runs written as ranges (``\\u2000-\\u200a``).

    \\uXXXX escapes mean the same in ECMA-262 (JSON Schema's regex dialect) and Python."""
    points = sorted({ord(char) for char in chars})
    runs: list[list[int]] = []
    for point in points:
        if runs and point == runs[-1][1] + 1:
            runs[-1][1] = point
        else:
            runs.append([point, point])
    parts = [
        f"\\u{low:04x}" if low == high else f"\\u{low:04x}-\\u{high:04x}" for low, high in runs
    ]
    return f"[{'^' if negated else ''}{''.join(parts)}]"


#: Regex pieces for text inputs, which the server strips of surrounding white space
#: (``WHITESPACE``) before checking their length, and in which it refuses NUL.
BLANK = _char_class(WHITESPACE)
NOT_NUL = _char_class("\x00", negated=True)
VISIBLE = _char_class("\x00" + WHITESPACE, negated=True)


def text(min_length: int, max_length: int) -> Schema:
    """Text of ``min_length`` (0 or 1) to ``max_length`` characters once stripped, no NUL.

    Said as a pattern, not minLength/maxLength, which would count the white space the
    server strips: the first and last visible characters bound the length.
    """
    if min_length not in (0, 1) or max_length < 1:
        raise ValueError("text() describes 0..n or 1..n characters")
    stripped = VISIBLE
    if max_length > 1:
        stripped += f"(?:{NOT_NUL}{{0,{max_length - 2}}}{VISIBLE})?"
    if min_length == 0:
        stripped = f"(?:{stripped})?"
    return {
        "type": "string",
        "pattern": f"^{BLANK}*{stripped}{BLANK}*$",
        "description": f"{min_length}..{max_length} characters once stripped of surrounding "
        "white space; no NUL",
    }


def email_text(min_length: int, max_length: int) -> Schema:
    """Like :func:`text`, and containing "@"."""
    middle = f"{NOT_NUL}{{{min_length - 2},{max_length - 2}}}"
    return {
        "type": "string",
        "pattern": f"^{BLANK}*(?={NOT_NUL}*@){VISIBLE}{middle}{VISIBLE}{BLANK}*$",
        "description": f"{min_length}..{max_length} characters once stripped of surrounding "
        f"white space, containing '@'; no NUL; stored lower-cased, which must fit "
        f"{max_length} characters too",
    }


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


TIMESTAMP: Schema = {"type": "string", "format": "date-time"}


def obj(properties: dict[str, Schema], *, optional: tuple[str, ...] = ()) -> Schema:
    """A closed object; every property is required unless listed in ``optional``."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def body(properties: dict[str, Schema], *, optional: tuple[str, ...] = ()) -> Schema:
    return obj(properties, optional=optional)


def page_of(item: str) -> Schema:
    return obj(
        {
            "items": {"type": "array", "items": ref(item)},
            "total": integer(0),
            "page": integer(1, MAX_PAGE),
            "per_page": integer(1, 100),
        }
    )


ETAG_HEADER: Schema = {
    "description": 'The version of the product or customer, a strong entity tag ("3"). '
    "Send it back in If-Match to write only if nobody changed it since.",
    "schema": {"type": "string", "pattern": '^"[0-9]+"$'},
}


RETRY_AFTER_HEADER: Schema = {
    "description": "Seconds after which the same request may succeed",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}

REPLAYED_HEADER: Schema = {
    "description": "Present when this is the stored first response to an earlier request "
    "with the same Idempotency-Key, replayed: the write did not run again",
    "schema": {"const": "true"},
}


def json_response(
    description: str, schema: Schema, *, etag: bool = False, headers: Schema | None = None
) -> Schema:
    response: Schema = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    headers = {**({"ETag": ETAG_HEADER} if etag else {}), **(headers or {})}
    if headers:
        response["headers"] = headers
    return response


ERROR_DESCRIPTIONS = {
    400: "Body is not JSON, not application/json, or nested too deeply",
    404: "Unknown id in the path",
    409: "A domain rule refuses the change (`conflict`), or another request changed the "
    "same data first (`concurrency_conflict`: reload and retry)",
    412: "If-Match names none of the current version (`precondition_failed`): reload and retry",
    413: "Body larger than the server's limit (`payload_too_large`, 1 MiB by default)",
    422: "Invalid input; `fields` names each bad field",
    503: "The database is unreachable",
}
#: What else a 409 and a 422 mean on a write: its Idempotency-Key.
WRITE_CONFLICT = (
    f"{ERROR_DESCRIPTIONS[409]}; or a request with the same Idempotency-Key is still "
    "running (`idempotency_key_in_use`, with Retry-After), or was applied but its response "
    "lost (`idempotency_response_lost`: it is not applied again)"
)
WRITE_INVALID = (
    f"{ERROR_DESCRIPTIONS[422]}; also a malformed Idempotency-Key, or one already used for "
    "a different request (`field: Idempotency-Key`)"
)
#: What a 503 means on a write: it waited too long for a lock, or the write guard
#: (strict) refuses the legacy path.
WRITE_UNAVAILABLE = (
    "The write waited longer than the server allows for data another transaction holds "
    "(`write_timeout`, with Retry-After), or the write guard (strict mode) refuses a write "
    "that bypasses the commands (`unguarded_write`); nothing was written"
)


def responses(
    status: int, description: str, schema: Schema | None, *errors: int, etag: bool = False
) -> Schema:
    result: Schema = {
        str(status): json_response(description, schema, etag=etag)
        if schema is not None
        else {"description": description}
    }
    for code in errors:
        result[str(code)] = json_response(ERROR_DESCRIPTIONS[code], ref("Error"))
    return result


def write_responses(
    status: int,
    description: str,
    schema: Schema | None,
    *errors: int,
    body: bool = False,
    conditional: bool = False,
    etag: bool = False,
) -> Schema:
    """The answers of a write: its own (maybe replayed for an Idempotency-Key), plus what
    any write can answer (409 for a lost race or a key in use, 422 for a bad key, 503 for
    a lock waited out or a strict write guard), with a body 400/413, with If-Match 412."""
    codes = set(errors)
    if body:
        codes |= {400, 413}
    if conditional:
        codes.add(412)
    result = responses(status, description, schema, *sorted(codes), etag=etag)
    replayed = {"Idempotent-Replayed": REPLAYED_HEADER}
    if schema is None:
        result[str(status)]["headers"] = replayed
    else:
        result[str(status)] = json_response(description, schema, etag=etag, headers=replayed)
    retry_after = {"Retry-After": RETRY_AFTER_HEADER}
    result["409"] = json_response(WRITE_CONFLICT, ref("Error"), headers=retry_after)
    result["422"] = json_response(WRITE_INVALID, ref("Error"))
    result["503"] = json_response(WRITE_UNAVAILABLE, ref("Error"), headers=retry_after)
    return dict(sorted(result.items()))


def path_param(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": integer(1)}


def query(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


IF_MATCH: Schema = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Write only if the resource is still at one of these versions: its ETag "
    '("3"), or a list ("2", "3"). "*" or no header: write unconditionally. Weak tags '
    "(W/...) never match. Otherwise 412, and nothing is written.",
}

IDEMPOTENCY_KEY: Schema = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {
        "type": "string",
        "pattern": "^[ \\t]*[!-~](?:[ -~]{0,198}[!-~])?[ \\t]*$",
    },
    "description": "Makes a retry safe: 1..200 printable ASCII characters (surrounding "
    "spaces stripped), new for every distinct write. The first successful response to a "
    "request with this key on this operation is stored; the same request again gets it "
    "back (Idempotent-Replayed: true) and writes nothing. The same key with another "
    "request is a 422; while the first still runs, a 409 with Retry-After.",
}

PAGINATION = [
    query("page", {**integer(1, MAX_PAGE), "default": 1}, "Page number, from 1"),
    query("per_page", {**integer(1, 100), "default": 20}, "Items per page"),
]


def operation(
    operation_id: str,
    summary: str,
    tag: str,
    responses_: Schema,
    *,
    parameters: list[Schema] | None = None,
    request: Schema | None = None,
) -> Schema:
    op: Schema = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if parameters:
        op["parameters"] = parameters
    if request is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": request}},
        }
    op["responses"] = responses_
    return op


# --- component schemas -----------------------------------------------------------------------

SCHEMAS: dict[str, Schema] = {
    "Error": obj(
        {
            "error": obj(
                {
                    "status": integer(),
                    "code": {
                        "type": "string",
                        "examples": [
                            "bad_request",
                            "not_found",
                            "method_not_allowed",
                            "conflict",
                            "concurrency_conflict",
                            "precondition_failed",
                            "payload_too_large",
                            "validation_error",
                            "service_unavailable",
                            "unguarded_write",
                            "write_timeout",
                            "idempotency_key_in_use",
                            "idempotency_response_lost",
                        ],
                    },
                    "message": {"type": "string"},
                    "fields": {
                        "type": "array",
                        "items": obj({"field": {"type": "string"}, "reason": {"type": "string"}}),
                    },
                },
                optional=("fields",),
            )
        }
    ),
    "Health": obj({"status": {"const": "ok"}}),
    "Index": obj(
        {
            "name": {"type": "string"},
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        }
    ),
    "Product": obj(
        {
            "id": integer(),
            "sku": {"type": "string"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "price_cents": integer(0),
            "category_id": integer(),
            "category": {"type": "string"},
            "stock": integer(0),
            "avg_rating": nullable({"type": "number"}),
            "review_count": integer(0),
            "units_sold": integer(0),
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        }
    ),
    "ProductPage": page_of("Product"),
    "Review": obj(
        {
            "id": integer(),
            "product_id": integer(),
            "customer_id": nullable(integer()),
            "rating": integer(1, 5),
            "body": {"type": "string"},
            "created_at": TIMESTAMP,
        }
    ),
    "ReviewPage": page_of("Review"),
    "Category": obj({"id": integer(), "name": {"type": "string"}, "product_count": integer(0)}),
    "CategoryList": obj(
        {"items": {"type": "array", "items": ref("Category")}, "total": integer(0)}
    ),
    "Customer": obj(
        {
            "id": integer(),
            "email": {"type": "string"},
            "name": {"type": "string"},
            "created_at": TIMESTAMP,
        }
    ),
    "CustomerPage": page_of("Customer"),
    "CustomerOrder": obj(
        {
            "id": integer(),
            "status": ref("OrderStatus"),
            "created_at": TIMESTAMP,
            "line_count": integer(0),
            "item_count": integer(0),
            "total_cents": integer(0),
        }
    ),
    "CustomerOrderPage": page_of("CustomerOrder"),
    "CustomerSummary": obj(
        {
            "customer_id": integer(),
            "order_count": integer(0),
            "lifetime_value_cents": integer(0),
            "average_order_value_cents": integer(0),
            "first_order_at": nullable(TIMESTAMP),
            "last_order_at": nullable(TIMESTAMP),
            "favourite_category": nullable(
                obj({"id": integer(), "name": {"type": "string"}, "units": integer(0)})
            ),
        }
    ),
    "OrderStatus": {"type": "string", "enum": ["placed", "paid", "shipped", "cancelled"]},
    "OrderLine": obj(
        {
            "id": integer(),
            "product_id": integer(),
            "sku": {"type": "string"},
            "name": {"type": "string"},
            "quantity": integer(1, 1000),
            "unit_price_cents": integer(0),
            "line_total_cents": integer(0),
        }
    ),
    "Order": obj(
        {
            "id": integer(),
            "customer_id": integer(),
            "status": ref("OrderStatus"),
            "created_at": TIMESTAMP,
            "paid_at": nullable(TIMESTAMP),
            "shipped_at": nullable(TIMESTAMP),
            "cancelled_at": nullable(TIMESTAMP),
            "lines": {"type": "array", "items": ref("OrderLine")},
            "item_count": integer(0),
            "total_cents": integer(0),
        }
    ),
    "TopProducts": obj(
        {
            "items": {
                "type": "array",
                "items": obj(
                    {
                        "product_id": integer(),
                        "sku": {"type": "string"},
                        "name": {"type": "string"},
                        "units_sold": integer(0),
                        "revenue_cents": integer(0),
                    }
                ),
            },
            "total": integer(0),
            "days": integer(1, 3650),
            "limit": integer(1, 100),
        }
    ),
    "DailySales": obj(
        {
            "items": {
                "type": "array",
                "items": obj(
                    {
                        "date": {"type": "string", "format": "date"},
                        "order_count": integer(0),
                        "units": integer(0),
                        "revenue_cents": integer(0),
                    }
                ),
            },
            "total": integer(0),
            "days": integer(1, 3650),
        }
    ),
    "LowStockItem": obj(
        {
            "product_id": integer(),
            "sku": {"type": "string"},
            "name": {"type": "string"},
            "category": {"type": "string"},
            "stock": integer(0),
        }
    ),
    "LowStockPage": page_of("LowStockItem"),
}

# --- request bodies --------------------------------------------------------------------------
# Integers are JSON numbers: 5.0 is the integer 5 (as in JSON Schema), 5.5 is refused.

PRODUCT_FIELDS: dict[str, Schema] = {
    "sku": text(1, 40),
    "name": text(1, 200),
    "price_cents": integer(0, MAX_DB_INT),
    "category_id": {**db_id(), "description": "Must be an existing category (else 422)"},
    "description": text(0, 5000),
}
CREATE_PRODUCT = body(
    {**PRODUCT_FIELDS, "stock": {**integer(0, MAX_DB_INT), "default": 0}},
    optional=("description", "stock"),
)
UPDATE_PRODUCT = {**body(PRODUCT_FIELDS, optional=tuple(PRODUCT_FIELDS)), "minProperties": 1}
RESTOCK = body({"quantity": integer(1, 1_000_000)})
CREATE_REVIEW = body(
    {
        "rating": integer(1, 5),
        "body": text(0, 5000),
        "customer_id": {**db_id(), "description": "Must be an existing customer (else 422)"},
    },
    optional=("body", "customer_id"),
)
CREATE_CATEGORY = body({"name": text(1, 80)})
CUSTOMER_FIELDS: dict[str, Schema] = {
    "email": email_text(3, 254),
    "name": text(1, 200),
}
CREATE_CUSTOMER = body(CUSTOMER_FIELDS)
UPDATE_CUSTOMER = {**body(CUSTOMER_FIELDS, optional=tuple(CUSTOMER_FIELDS)), "minProperties": 1}
CREATE_ORDER = body(
    {
        "customer_id": {**db_id(), "description": "Must be an existing customer (else 422)"},
        "lines": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": body(
                {
                    "product_id": {
                        **db_id(),
                        "description": "An existing product, at most once per order (else 422)",
                    },
                    "quantity": integer(1, 1000),
                }
            ),
        },
    }
)

# --- operations ------------------------------------------------------------------------------

PRODUCT_ID = path_param("product_id")
CUSTOMER_ID = path_param("customer_id")
ORDER_ID = path_param("order_id")
DAYS = query("days", {**integer(1, 3650), "default": 30}, "Last N calendar days in UTC")
PRODUCT_SORTS = ["name", "-name", "price", "-price", "rating", "popularity"]
SEARCH = text(0, 200)


def order_transition(name: str, summary: str) -> Schema:
    return operation(
        f"{name}Order", summary, "orders",
        write_responses(200, "The order after the transition", ref("Order"), 404),
        parameters=[ORDER_ID, IDEMPOTENCY_KEY],
    )  # fmt: skip


PATHS: dict[str, Schema] = {
    "/api/products": {
        "get": operation(
            "listProducts", "The catalog", "products",
            responses(200, "A page of products", ref("ProductPage"), 422),
            parameters=[
                query("category", db_id(), "Category id"),
                query("q", SEARCH, "Substring of name or sku, any case; empty: no filter"),
                query("in_stock", {"type": "string", "enum": ["true", "false"]},
                      "true: stock > 0; false: stock = 0"),
                query("sort", {"type": "string", "enum": PRODUCT_SORTS, "default": "name"},
                      "Order; ties by id ascending"),
                *PAGINATION,
            ],
        ),
        "post": operation(
            "createProduct", "Add a product", "products",
            write_responses(201, "The new product", ref("Product"), body=True, etag=True),
            parameters=[IDEMPOTENCY_KEY], request=CREATE_PRODUCT,
        ),
    },
    "/api/products/{product_id}": {
        "get": operation(
            "getProduct", "One product", "products",
            responses(200, "The product", ref("Product"), 404, etag=True),
            parameters=[PRODUCT_ID],
        ),
        "patch": operation(
            "updateProduct", "Change a product (not its stock)", "products",
            write_responses(200, "The product", ref("Product"), 404,
                            body=True, conditional=True, etag=True),
            parameters=[PRODUCT_ID, IF_MATCH, IDEMPOTENCY_KEY], request=UPDATE_PRODUCT,
        ),
        "delete": operation(
            "deleteProduct", "Delete a product that no order references", "products",
            write_responses(204, "Deleted", None, 404, conditional=True),
            parameters=[PRODUCT_ID, IF_MATCH, IDEMPOTENCY_KEY],
        ),
    },
    "/api/products/{product_id}/restock": {
        "post": operation(
            "restockProduct", "Add stock", "products",
            write_responses(200, "The product", ref("Product"), 404,
                            body=True, conditional=True, etag=True),
            parameters=[PRODUCT_ID, IF_MATCH, IDEMPOTENCY_KEY], request=RESTOCK,
        ),
    },
    "/api/products/{product_id}/reviews": {
        "get": operation(
            "listProductReviews", "Reviews, newest first", "products",
            responses(200, "A page of reviews", ref("ReviewPage"), 404, 422),
            parameters=[PRODUCT_ID, *PAGINATION],
        ),
        "post": operation(
            "createProductReview", "Review a product", "products",
            write_responses(201, "The new review", ref("Review"), 404, body=True),
            parameters=[PRODUCT_ID, IDEMPOTENCY_KEY], request=CREATE_REVIEW,
        ),
    },
    "/api/categories": {
        "get": operation(
            "listCategories", "All categories by name", "products",
            responses(200, "The categories", ref("CategoryList")),
        ),
        "post": operation(
            "createCategory", "Add a category", "products",
            write_responses(201, "The new category", ref("Category"), body=True),
            parameters=[IDEMPOTENCY_KEY], request=CREATE_CATEGORY,
        ),
    },
    "/api/customers": {
        "get": operation(
            "listCustomers", "Customers by id", "customers",
            responses(200, "A page of customers", ref("CustomerPage"), 422),
            parameters=[query("q", SEARCH, "Substring of name or email; empty: no filter"),
                        *PAGINATION],
        ),
        "post": operation(
            "createCustomer", "Add a customer (email is lower-cased)", "customers",
            write_responses(201, "The new customer", ref("Customer"), body=True, etag=True),
            parameters=[IDEMPOTENCY_KEY], request=CREATE_CUSTOMER,
        ),
    },
    "/api/customers/{customer_id}": {
        "get": operation(
            "getCustomer", "One customer", "customers",
            responses(200, "The customer", ref("Customer"), 404, etag=True),
            parameters=[CUSTOMER_ID],
        ),
        "patch": operation(
            "updateCustomer", "Change email and/or name", "customers",
            write_responses(200, "The customer", ref("Customer"), 404,
                            body=True, conditional=True, etag=True),
            parameters=[CUSTOMER_ID, IF_MATCH, IDEMPOTENCY_KEY], request=UPDATE_CUSTOMER,
        ),
        "delete": operation(
            "deleteCustomer", "Delete a customer without orders", "customers",
            write_responses(204, "Deleted", None, 404, conditional=True),
            parameters=[CUSTOMER_ID, IF_MATCH, IDEMPOTENCY_KEY],
        ),
    },
    "/api/customers/{customer_id}/orders": {
        "get": operation(
            "listCustomerOrders", "Order history, newest first", "customers",
            responses(200, "A page of orders", ref("CustomerOrderPage"), 404, 422),
            parameters=[CUSTOMER_ID, *PAGINATION],
        ),
    },
    "/api/customers/{customer_id}/summary": {
        "get": operation(
            "getCustomerSummary", "Lifetime figures over non-cancelled orders", "customers",
            responses(200, "The summary", ref("CustomerSummary"), 404),
            parameters=[CUSTOMER_ID],
        ),
    },
    "/api/orders": {
        "post": operation(
            "placeOrder", "Place an order; stock is taken in the same transaction", "orders",
            write_responses(201, "The new order", ref("Order"), body=True),
            parameters=[IDEMPOTENCY_KEY], request=CREATE_ORDER,
        ),
    },
    "/api/orders/{order_id}": {
        "get": operation(
            "getOrder", "One order", "orders",
            responses(200, "The order", ref("Order"), 404),
            parameters=[ORDER_ID],
        ),
    },
    "/api/orders/{order_id}/pay": {"post": order_transition("pay", "placed -> paid")},
    "/api/orders/{order_id}/ship": {"post": order_transition("ship", "paid -> shipped")},
    "/api/orders/{order_id}/cancel": {
        "post": order_transition("cancel", "placed or paid -> cancelled; stock is returned"),
    },
    "/api/reports/top-products": {
        "get": operation(
            "reportTopProducts", "Best sellers by units (cancelled orders excluded)", "reports",
            responses(200, "The ranking", ref("TopProducts"), 422),
            parameters=[DAYS, query("limit", {**integer(1, 100), "default": 10}, "Rows")],
        ),
    },
    "/api/reports/daily-sales": {
        "get": operation(
            "reportDailySales", "Per UTC day with sales, date ascending", "reports",
            responses(200, "The days", ref("DailySales"), 422),
            parameters=[DAYS],
        ),
    },
    "/api/reports/low-stock": {
        "get": operation(
            "reportLowStock", "Products with stock <= threshold", "reports",
            responses(200, "A page of products", ref("LowStockPage"), 422),
            parameters=[
                query("threshold", {**integer(0, 1_000_000), "default": 10}, "Stock limit"),
                *PAGINATION,
            ],
        ),
    },
    "/": {
        "get": operation(
            "index", "Where to start: links to the API and its description", "meta",
            responses(200, "Links", ref("Index")),
        ),
    },
    "/healthz": {
        "get": operation(
            "health", "Health: a database round trip, and a migrated schema", "meta",
            responses(200, "Up", ref("Health"), 503),
        ),
    },
    "/openapi.json": {
        "get": operation(
            "openapi", "This document", "meta",
            responses(200, "The OpenAPI document", {"type": "object"}),
        ),
    },
}  # fmt: skip


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Demo shop API",
            "version": "1.0.0",
            "description": "The contract in docs/api.md. Money is integer cents; every error "
            "the app answers is the `Error` JSON shape, never HTML. (Requests whose request "
            "line or headers exceed the server's limits are refused by gunicorn before they "
            "reach the app, with its own HTML page: see docs/api.md.)",
        },
        "tags": [{"name": name} for name in ("products", "customers", "orders", "reports", "meta")],
        "paths": PATHS,
        "components": {"schemas": SCHEMAS},
    }
