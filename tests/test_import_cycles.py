"""No import cycle anywhere in the package (imports inside functions count too)."""

from __future__ import annotations

import grimp


def test_the_package_import_graph_has_no_cycle():
    graph = grimp.build_graph("sienn_ray")
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if graph.chain_exists(importer=imported, imported=module):
                cycles.append((module, *graph.find_shortest_chain(importer=imported, imported=module)))
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)
