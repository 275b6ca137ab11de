"""The Kuzu store of the dependency graph (the only package that imports ``kuzu``).

Functions: :func:`build_graph`, :func:`open_graph`, :func:`query`, :func:`adjacency`,
:func:`functions`, :func:`edges_by_kind`, :func:`stats`. See :mod:`graph_db.store`.
"""

from graph_db.store import (
    BuildReport,
    GraphConnection,
    GraphLocked,
    GraphNotBuilt,
    MissingParameter,
    Token,
    WriteQueryRefused,
    adjacency,
    build_graph,
    edges_by_kind,
    functions,
    iter_edges,
    leftovers,
    open_graph,
    query,
    query_parameters,
    replace_category,
    stats,
    tokenize,
    write_clause,
    writer_lock,
)

__all__ = [
    "BuildReport",
    "GraphConnection",
    "GraphLocked",
    "GraphNotBuilt",
    "MissingParameter",
    "Token",
    "WriteQueryRefused",
    "adjacency",
    "build_graph",
    "edges_by_kind",
    "functions",
    "iter_edges",
    "leftovers",
    "open_graph",
    "query",
    "query_parameters",
    "replace_category",
    "stats",
    "tokenize",
    "write_clause",
    "writer_lock",
]
