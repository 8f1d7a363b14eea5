"""A tiny lending library, NOT the shop: the toolkit's test subject.

It has what real apps have and the toolkit must cope with: a blueprint, views returning a
dict, a tuple, a ``Response`` and a rendered template, a view behind an auth decorator,
the host's own domain error with its own error handler, an optimistic-concurrency
version column, and SQLAlchemy 2 typed models. ``wire_cqrs`` adds the CQRS side by
endpoint name, without touching a view.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, make_response, render_template_string
from flask_sqlalchemy import SQLAlchemy
from pydantic import Field
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, func, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cqrs_layer import (
    CQRS,
    Command,
    DomainRuleViolated,
    Event,
    NotFound,
    Projection,
    ProjectionContext,
    Query,
    ReadModel,
    UnitOfWork,
)

TOKEN = "let-me-in"
MAX_LOANS_PER_BORROWER = 2


class ToyBase(DeclarativeBase):
    metadata = MetaData()


db = SQLAlchemy(model_class=ToyBase)


class Book(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200), unique=True)
    copies: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "copies": self.copies}


class Loan(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "loans"

    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"))
    borrower: Mapped[str] = mapped_column(String(100))


#: The denormalized read model: a book with how many copies are out.
book_shelf = Table(
    "book_shelf",
    ToyBase.metadata,
    Column("book_id", Integer, primary_key=True, autoincrement=False),
    Column("title", String(200), nullable=False),
    Column("available", Integer, nullable=False),
    Column("on_loan", Integer, nullable=False),
)


class LibraryError(Exception):
    """The host app's own domain error, raised by legacy service code."""

    status = 409


# ---------------------------------------------------------------- legacy service code


def lend_copy(book: Book, borrower: str) -> Loan:
    if book.copies < 1:
        raise LibraryError(f"no copies of {book.title!r} left")
    book.copies -= 1
    loan = Loan(book_id=book.id, borrower=borrower)
    db.session.add(loan)
    return loan


def on_loan(book_id: int) -> int:
    return db.session.scalar(select(func.count(Loan.id)).where(Loan.book_id == book_id)) or 0


# ---------------------------------------------------------------- legacy views

bp = Blueprint("library", __name__, url_prefix="/library")


def require_token(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        from flask import request

        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return {"error": {"status": 401, "code": "unauthorized", "message": "token"}}, 401
        return view(*args, **kwargs)

    return guarded


@bp.get("/books/<int:book_id>")
def get_book(book_id: int) -> Any:
    book = db.get_or_404(Book, book_id)
    return {
        "id": book.id,
        "title": book.title,
        "available": book.copies,
        "on_loan": on_loan(book_id),
    }


@bp.get("/books")
def list_books() -> Response:
    books = db.session.scalars(select(Book).order_by(Book.id)).all()
    return jsonify({"items": [b.to_dict() for b in books]})


@bp.get("/books/<int:book_id>/card")
def book_card(book_id: int) -> str:
    book = db.get_or_404(Book, book_id)
    return render_template_string("<h1>{{ book.title }}</h1>", book=book)


@bp.post("/books")
def add_book() -> Any:
    from flask import request

    data = request.get_json()
    book = Book(title=data["title"], copies=data["copies"])
    db.session.add(book)
    db.session.commit()
    return book.to_dict(), 201, {"Location": f"/library/books/{book.id}"}


@bp.post("/books/<int:book_id>/loans")
@require_token
def lend_book(book_id: int) -> Any:
    from flask import request

    book = db.get_or_404(Book, book_id)
    loan = lend_copy(book, request.get_json()["borrower"])
    db.session.commit()
    return {"loan_id": loan.id, "book_id": book_id}, 201


@bp.put("/books/<int:book_id>/title")
def rename_book(book_id: int) -> Response:
    from flask import request

    book = db.get_or_404(Book, book_id)
    book.title = request.get_json()["title"]
    db.session.commit()
    return make_response(jsonify(book.to_dict()), 200)


def create_toy_app(config: dict[str, Any], *, wired: bool = True) -> Flask:
    app = Flask(__name__)
    app.config.update(TESTING=True, **config)
    db.init_app(app)
    app.register_blueprint(bp)

    @app.errorhandler(LibraryError)
    def _library_error(exc: LibraryError) -> tuple[dict[str, Any], int]:
        db.session.rollback()
        return {"library_error": str(exc)}, exc.status

    if wired:
        wire_cqrs(app)
    return app


# ---------------------------------------------------------------- the CQRS side


class AddBook(Command):
    title: str = Field(min_length=1, max_length=200)
    copies: int = Field(ge=0)


class LendBook(Command):
    book_id: int
    borrower: str = Field(min_length=1, max_length=100)


class RenameBook(Command):
    book_id: int
    title: str = Field(min_length=1, max_length=200)


class BookAdded(Event):
    event_type = "library.BookAdded"
    aggregate_type = "book"
    id: int
    title: str
    copies: int


class BookLent(Event):
    event_type = "library.BookLent"
    aggregate_type = "book"
    aggregate_id_field = "book_id"
    book_id: int
    loan_id: int
    borrower: str


class BookRenamed(Event):
    event_type = "library.BookRenamed"
    aggregate_type = "book"
    id: int
    title: str


class GetBook(Query):
    book_id: int


def handle_add_book(command: AddBook, uow: UnitOfWork) -> dict[str, Any]:
    if uow.session.scalar(select(Book.id).where(Book.title == command.title)) is not None:
        raise DomainRuleViolated("a book with this title exists", field="title")
    book = Book(title=command.title, copies=command.copies)
    uow.session.add(book)
    uow.session.flush()
    uow.record(BookAdded(id=book.id, title=book.title, copies=book.copies))
    return book.to_dict()


def handle_lend_book(command: LendBook, uow: UnitOfWork) -> dict[str, Any]:
    book = uow.session.get(Book, command.book_id)
    if book is None:
        raise NotFound(f"no book {command.book_id}", field="book_id")
    loan = lend_copy(book, command.borrower)  # the host's LibraryError propagates as is
    uow.session.flush()
    # Checked after writing on purpose: the rollback must undo the flushed loan.
    held = uow.session.scalar(select(func.count(Loan.id)).where(Loan.borrower == loan.borrower))
    if (held or 0) > MAX_LOANS_PER_BORROWER:
        raise DomainRuleViolated("borrower already holds too many books", field="borrower")
    uow.record(BookLent(book_id=book.id, loan_id=loan.id, borrower=loan.borrower))
    return {"loan_id": loan.id, "book_id": book.id}


def handle_rename_book(command: RenameBook, uow: UnitOfWork) -> dict[str, Any]:
    book = uow.session.get(Book, command.book_id)
    if book is None:
        raise NotFound(f"no book {command.book_id}", field="book_id")
    book.title = command.title
    uow.session.flush()
    uow.record(BookRenamed(id=book.id, title=book.title))
    return book.to_dict()


def get_book_from_shelf(query: GetBook, connection: Any) -> dict[str, Any] | None:
    row = (
        connection.execute(select(book_shelf).where(book_shelf.c.book_id == query.book_id))
        .mappings()
        .first()
    )
    if row is None:
        return None
    return {
        "id": row["book_id"],
        "title": row["title"],
        "available": row["available"],
        "on_loan": row["on_loan"],
    }


def shelf_source() -> Any:
    loans = select(Loan.book_id, func.count(Loan.id).label("n")).group_by(Loan.book_id).subquery()
    return select(
        Book.id.label("book_id"),
        Book.title.label("title"),
        Book.copies.label("available"),
        func.coalesce(loans.c.n, 0).label("on_loan"),
    ).outerjoin(loans, loans.c.book_id == Book.id)


shelf_model = ReadModel(
    name="book_shelf",
    table=book_shelf,
    source=shelf_source,
)

shelf = Projection("book_shelf", read_models=[shelf_model])


@shelf.on(BookAdded)
def _book_added(event: BookAdded, ctx: ProjectionContext) -> None:
    ctx.connection.execute(
        book_shelf.insert().values(
            book_id=event.id, title=event.title, available=event.copies, on_loan=0
        )
    )


@shelf.on(BookLent)
def _book_lent(event: BookLent, ctx: ProjectionContext) -> None:
    ctx.connection.execute(
        update(book_shelf)
        .where(book_shelf.c.book_id == event.book_id)
        .values(available=book_shelf.c.available - 1, on_loan=book_shelf.c.on_loan + 1)
    )


@shelf.on(BookRenamed)
def _book_renamed(event: BookRenamed, ctx: ProjectionContext) -> None:
    ctx.connection.execute(
        update(book_shelf).where(book_shelf.c.book_id == event.id).values(title=event.title)
    )


def _not_found_if_none(result: Any, view_args: dict[str, Any]) -> Any:
    if result is None:
        raise NotFound(f"no book {view_args['book_id']}", field="book_id")
    return result


def wire_cqrs(app: Flask) -> CQRS:
    cqrs = CQRS(app, db)
    cqrs.register_projection(shelf)
    cqrs.register_command(AddBook, handle_add_book)
    cqrs.register_command(LendBook, handle_lend_book)
    cqrs.register_command(RenameBook, handle_rename_book)
    cqrs.register_query(GetBook, get_book_from_shelf)

    cqrs.command_endpoint(
        "library.add_book",
        build=lambda request, _: AddBook.model_validate(request.get_json()),
        respond=lambda book, _: (book, 201, {"Location": f"/library/books/{book['id']}"}),
        writes=["books"],
    )
    cqrs.command_endpoint(
        "library.lend_book",
        build=lambda request, args: LendBook(book_id=args["book_id"], **request.get_json()),
        respond=lambda loan, _: (loan, 201),
        decorators=[require_token],
        writes=["books", "loans"],
    )
    cqrs.command_endpoint(
        "library.rename_book",
        build=lambda request, args: RenameBook(book_id=args["book_id"], **request.get_json()),
        respond=lambda book, _: make_response(jsonify(book), 200),
        writes=["books"],
    )
    cqrs.query_endpoint(
        "library.get_book",
        build=lambda _, args: GetBook(book_id=args["book_id"]),
        respond=_not_found_if_none,
        read_models=["book_shelf"],
    )
    return cqrs


# ---------------------------------------------------------------- test helpers


def count_rows(table: Table) -> int:
    """Rows as another connection sees them: only what committed."""
    with db.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)) or 0)


def committed_rows(table: Table) -> list[dict[str, Any]]:
    with db.engine.connect() as connection:
        rows = connection.execute(select(table).order_by(*table.primary_key.columns)).mappings()
        return [dict(row) for row in rows]


AUTH = {"Authorization": f"Bearer {TOKEN}"}
