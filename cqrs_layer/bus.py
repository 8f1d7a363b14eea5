"""The command bus and the query bus: one handler per message type.

A command goes through the middleware pipeline (outermost first), each middleware being
``middleware(command, next_handler) -> result``; the innermost step calls the plain
handler ``handler(command, uow)`` with the unit of work the transaction middleware opened.
A query goes straight to ``handler(query, connection)`` and returns plain data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import Connection

from .messages import Command, Query
from .uow import UnitOfWork, active_unit_of_work

C = TypeVar("C", bound=Command)
Q = TypeVar("Q", bound=Query)

NextHandler = Callable[[Command], Any]
Middleware = Callable[[Command, NextHandler], Any]
CommandHandler = Callable[[Any, UnitOfWork], Any]
QueryHandler = Callable[[Any, Connection], Any]


class CommandBus:
    def __init__(self, middleware: Iterable[Middleware] = ()) -> None:
        self.middleware: list[Middleware] = list(middleware)
        self.handlers: dict[type[Command], CommandHandler] = {}

    def register(self, command_type: type[Command], handler: CommandHandler) -> None:
        if command_type in self.handlers:
            raise ValueError(f"{command_type.__name__} already has a handler")
        self.handlers[command_type] = handler

    def handler(self, command_type: type[C]) -> Callable[[CommandHandler], CommandHandler]:
        def register(handler: CommandHandler) -> CommandHandler:
            self.register(command_type, handler)
            return handler

        return register

    def dispatch(self, command: Command) -> Any:
        if type(command) not in self.handlers:
            raise LookupError(f"no handler registered for {type(command).__name__}")
        step: NextHandler = self._call_handler
        for middleware in reversed(self.middleware):
            step = _chain(middleware, step)
        return step(command)

    def _call_handler(self, command: Command) -> Any:
        uow = active_unit_of_work()
        if uow is None:
            raise RuntimeError("no unit of work: the transaction middleware is not in the pipeline")
        return self.handlers[type(command)](command, uow)


def _chain(middleware: Middleware, next_handler: NextHandler) -> NextHandler:
    return lambda command: middleware(command, next_handler)


class QueryBus:
    def __init__(self, connection: Callable[[], Connection]) -> None:
        self._connection = connection
        self.handlers: dict[type[Query], QueryHandler] = {}

    def register(self, query_type: type[Query], handler: QueryHandler) -> None:
        if query_type in self.handlers:
            raise ValueError(f"{query_type.__name__} already has a handler")
        self.handlers[query_type] = handler

    def handler(self, query_type: type[Q]) -> Callable[[QueryHandler], QueryHandler]:
        def register(handler: QueryHandler) -> QueryHandler:
            self.register(query_type, handler)
            return handler

        return register

    def ask(self, query: Query) -> Any:
        try:
            handler = self.handlers[type(query)]
        except KeyError:
            raise LookupError(f"no handler registered for {type(query).__name__}") from None
        return handler(query, self._connection())
