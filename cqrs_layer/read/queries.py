"""The query bus: one handler per query type, ``handler(query, connection) -> data``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection

from ..core.messages import Query

QueryHandler = Callable[[Any, Connection], Any]

# A live read runs its query in a snapshot of its own (see cqrs_layer.rollout.routing).
_connection: ContextVar[Connection | None] = ContextVar("cqrs_query_connection", default=None)


class QueryBus:
    def __init__(self, connection: Callable[[], Connection]) -> None:
        self._default_connection = connection
        self.handlers: dict[type[Query], QueryHandler] = {}

    def register(self, query_type: type[Query], handler: QueryHandler) -> None:
        if query_type in self.handlers:
            raise ValueError(f"{query_type.__name__} already has a handler")
        self.handlers[query_type] = handler

    def ask(self, query: Query) -> Any:
        try:
            handler = self.handlers[type(query)]
        except KeyError:
            raise LookupError(f"no handler registered for {type(query).__name__}") from None
        return handler(query, _connection.get() or self._default_connection())

    @contextmanager
    def using(self, connection: Connection) -> Iterator[None]:
        """Answer the queries asked in this block on ``connection``."""
        token = _connection.set(connection)
        try:
            yield
        finally:
            _connection.reset(token)
