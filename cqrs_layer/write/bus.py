"""The command bus: one handler per command type, behind a middleware pipeline.

A command goes through the middleware (outermost first), each being
``middleware(command, next_handler) -> result``; the innermost step calls the plain
handler ``handler(command, uow)`` with the unit of work the transaction middleware opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..core.messages import Command
from .uow import UnitOfWork, active_unit_of_work

NextHandler = Callable[[Command], Any]
Middleware = Callable[[Command, NextHandler], Any]
CommandHandler = Callable[[Any, UnitOfWork], Any]


class CommandBus:
    def __init__(self, middleware: Iterable[Middleware] = ()) -> None:
        self.middleware: list[Middleware] = list(middleware)
        self.handlers: dict[type[Command], CommandHandler] = {}

    def register(self, command_type: type[Command], handler: CommandHandler) -> None:
        if command_type in self.handlers:
            raise ValueError(f"{command_type.__name__} already has a handler")
        self.handlers[command_type] = handler

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
