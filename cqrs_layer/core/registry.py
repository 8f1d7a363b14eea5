"""What an app declared to the toolkit: its wrapped endpoints and its read models.

The registry holds declarations only (names, kinds, which read models an endpoint reads,
which tables it writes); the behaviour attached to them lives in the layers above, which
each take the registry rather than the whole app.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from .errors import NotFound
from .read_model import ReadModel

EndpointKind = Literal["read", "write"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A wrapped Flask endpoint, by its endpoint name."""

    name: str
    kind: EndpointKind
    #: Read endpoint: the read models its new path reads (none declared: all of them).
    read_models: tuple[str, ...] = ()
    #: Write endpoint: the tables it writes (none declared: learned by the write guard).
    writes: frozenset[str] = field(default_factory=frozenset)


class UnknownEndpoint(NotFound):
    code = "unknown_endpoint"


class Registry:
    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.read_models: dict[str, ReadModel] = {}

    def add_endpoint(self, endpoint: Endpoint) -> None:
        if endpoint.name in self.endpoints:
            raise ValueError(f"endpoint {endpoint.name!r} is already wrapped by cqrs_layer")
        self.endpoints[endpoint.name] = endpoint

    def add_read_model(self, read_model: ReadModel) -> None:
        existing = self.read_models.get(read_model.name)
        if existing is not None and existing is not read_model:
            raise ValueError(f"a read model named {read_model.name!r} is already registered")
        self.read_models[read_model.name] = read_model

    def endpoint(self, name: str) -> Endpoint:
        """The wrapped endpoint ``name``, or :class:`UnknownEndpoint` listing the known ones."""
        try:
            return self.endpoints[name]
        except KeyError:
            known = ", ".join(sorted(self.endpoints)) or "none"
            raise UnknownEndpoint(
                f"no wrapped endpoint named {name!r} (known: {known})", field="endpoint"
            ) from None

    def of_kind(self, kind: EndpointKind) -> list[Endpoint]:
        return [e for name, e in sorted(self.endpoints.items()) if e.kind == kind]

    def read_models_of(self, endpoint: str) -> tuple[list[ReadModel], list[str]]:
        """The read models a read endpoint reads, and the declared names not registered."""
        declared = self.endpoint(endpoint).read_models
        if not declared:  # the safe guess: it may read any of them
            return [self.read_models[name] for name in sorted(self.read_models)], []
        return _split_known(declared, self.read_models)


def _split_known(
    names: Iterable[str], known: dict[str, ReadModel]
) -> tuple[list[ReadModel], list[str]]:
    found, unknown = [], []
    for name in names:
        model = known.get(name)
        if model is None:
            unknown.append(name)
        else:
            found.append(model)
    return found, unknown
