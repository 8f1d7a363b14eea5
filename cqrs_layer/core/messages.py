"""The three kinds of message: commands (do this), queries (tell me), events (this happened),
and :class:`StoredEvent`, an event as the outbox holds it.

Commands and queries are pydantic models validated strictly, so a bad request is refused
before any handler runs. Events are immutable records of something that committed; their
``event_type`` is the stable name stored in the outbox, so renaming a class never orphans
history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class Command(BaseModel):
    """An instruction to change state, named in the imperative (``PlaceOrder``)."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid", str_strip_whitespace=True)


class Query(BaseModel):
    """A request for data that changes nothing (``GetCustomerSummary``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Event(BaseModel):
    """A fact, named in the past tense (``OrderPlaced``).

    Subclasses say which aggregate they belong to; ``aggregate_id`` is read from the field
    named by ``aggregate_id_field``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str] = ""
    aggregate_type: ClassVar[str] = ""
    aggregate_id_field: ClassVar[str] = "id"

    _registry: ClassVar[dict[str, type[Event]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("event_type"):
            cls.event_type = cls.__name__
        existing = Event._registry.get(cls.event_type)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise TypeError(f"event type {cls.event_type!r} is already used by {existing!r}")
        Event._registry[cls.event_type] = cls

    @property
    def aggregate_id(self) -> str:
        return str(getattr(self, self.aggregate_id_field))

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_payload(cls, event_type: str, payload: dict[str, Any]) -> Event:
        try:
            event_class = Event._registry[event_type]
        except KeyError:
            raise LookupError(f"unknown event type {event_type!r}") from None
        return event_class.model_validate(payload)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the outbox holds it: the fact plus where and when it was recorded."""

    position: int
    event_id: str
    event_type: str
    aggregate_type: str
    aggregate_id: str
    payload: dict[str, Any]
    occurred_at: datetime  # aware UTC
    correlation_id: str | None

    @property
    def event(self) -> Event:
        return Event.from_payload(self.event_type, self.payload)
