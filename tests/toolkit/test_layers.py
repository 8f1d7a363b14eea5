"""The toolkit's modules import each other without a cycle, ``TYPE_CHECKING`` imports
included (the layer contract in ``make lint`` keeps the direction between layers; this
keeps every module inside a layer acyclic too)."""

from __future__ import annotations

import grimp


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components of mutually reachable modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def import_graph() -> dict[str, set[str]]:
    graph = grimp.build_graph("cqrs_layer", exclude_type_checking_imports=False)
    return {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}


def test_no_module_of_the_toolkit_takes_part_in_an_import_cycle():
    cycles = [c for c in strongly_connected(import_graph()) if len(c) > 1]

    assert cycles == []


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    assert sorted(map(sorted, strongly_connected(graph))) == [["a", "b", "c"], ["d"]]


def test_nothing_inside_the_toolkit_imports_its_root_package():
    """The root package is the public facade; a layer importing it would import them all."""
    graph = import_graph()
    importers = sorted(m for m, targets in graph.items() if "cqrs_layer" in targets)

    assert importers == []
