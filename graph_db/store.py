"""The Kuzu store of the dependency graph: schema, bulk build, read-only Cypher.

Schema::

    (:Function {name, category, tool_class, description, executable, parameters, response})
    (:Function)-[:DEPENDS_ON {kind, nested, evidence, judge, score, category}]->(:Function)

``parameters`` and ``response`` are JSON strings. The edge Parquet tables are the source of
truth: :func:`build_graph` rebuilds the whole database into a fresh file and renames it over
the old one, so a reader sees the old graph or the new one, never half of one. One writer at
a time (an exclusive lock on ``<path>.lock``); readers open the database read-only.

Kuzu is imported here and nowhere else: swapping the engine (e.g. for its fork LadybugDB)
touches this package only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kuzu
import polars as pl
import tenacity

SCHEMA = (
    "CREATE NODE TABLE Function(name STRING PRIMARY KEY, category STRING, tool_class STRING, description STRING, "
    "executable BOOLEAN, parameters STRING, response STRING)",
    "CREATE REL TABLE DEPENDS_ON(FROM Function TO Function, kind STRING, nested BOOLEAN, evidence STRING, "
    "judge STRING, score DOUBLE, category STRING)",
)
NODE_COLUMNS = ["name", "category", "tool_class", "description", "executable", "parameters", "response"]
EDGE_COLUMNS = ["src", "dst", "kind", "nested", "evidence", "judge", "score", "category"]

#: Cypher keywords of statements and clauses that change a database or reach outside the graph
#: (files, extensions, other databases, settings); a query holding one needs ``write=True``
WRITE_CLAUSES = (
    "CREATE",
    "MERGE",
    "SET",
    "DELETE",
    "DETACH",
    "REMOVE",
    "DROP",
    "ALTER",
    "RENAME",
    "COPY",
    "LOAD",
    "INSTALL",
    "UNINSTALL",
    "UPDATE",
    "ATTACH",
    "USE",
    "IMPORT",
    "EXPORT",
    "CHECKPOINT",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "COMMENT",
)
#: table functions a read-only ``CALL`` may name: catalog and graph information, and the
#: graph algorithms (they read the graph and return rows)
READ_CALLS = frozenset(
    {
        "SHOW_TABLES",
        "TABLE_INFO",
        "SHOW_CONNECTION",
        "SHOW_FUNCTIONS",
        "SHOW_INDEXES",
        "SHOW_SEQUENCES",
        "SHOW_WARNINGS",
        "SHOW_ATTACHED_DATABASES",
        "SHOW_LOADED_EXTENSIONS",
        "SHOW_OFFICIAL_EXTENSIONS",
        "SHOW_PROJECTED_GRAPHS",
        "PROJECTED_GRAPH_INFO",
        "CURRENT_SETTING",
        "DB_VERSION",
        "CATALOG_VERSION",
        "STATS_INFO",
        "STORAGE_INFO",
        "PROJECT_GRAPH",
        "DROP_PROJECTED_GRAPH",
        "PAGE_RANK",
        "PR",
        "WCC",
        "WEAKLY_CONNECTED_COMPONENTS",
        "SCC",
        "SCC_KO",
        "STRONGLY_CONNECTED_COMPONENTS",
        "STRONGLY_CONNECTED_COMPONENTS_KOSARAJU",
        "KCORE",
        "K_CORE_DECOMPOSITION",
        "LOUVAIN",
        "QUERY_FTS_INDEX",
        "QUERY_VECTOR_INDEX",
    }
)
_WRITE_WORDS = frozenset(WRITE_CLAUSES)

# Kuzu's lexer (its Cypher grammar): strings with backslash escapes, `escaped` names (a doubled
# backtick continues one), // and /* */ comments, numbers that end where a letter starts
# ('1LOAD' is 1 then LOAD), parameters $name or $1. Names are split at every non-ASCII
# character, so a keyword is never hidden inside a token that Kuzu would split.
_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>//[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<string>'(?:[^'\\]|\\.)*(?:'|\Z)|"(?:[^"\\]|\\.)*(?:"|\Z))
    | (?P<escaped>(?:`[^`]*(?:`|\Z))+)
    | (?P<number>(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)
    | (?P<param>\$(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+|`[^`]*`))
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<symbol>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str  # space, comment, string, escaped, number, param, word, symbol
    text: str
    offset: int


def tokenize(cypher: str) -> list[Token]:
    """The tokens of a Cypher text as Kuzu's lexer splits it (spaces and comments dropped)."""
    out = []
    for match in _TOKEN.finditer(cypher):
        kind = match.lastgroup or "symbol"
        if kind not in ("space", "comment"):
            out.append(Token(kind, match.group(), match.start()))
    return out


def query_parameters(cypher: str) -> list[str]:
    """The ``$name`` parameters a query uses, in order of first use."""
    tokens = tokenize(cypher)
    names = [
        t.text[1:].strip("`")
        for i, t in enumerate(tokens)
        if t.kind == "param" and not (i and tokens[i - 1].kind == "word" and tokens[i - 1].offset + len(tokens[i - 1].text) == t.offset)
    ]  # 'a$b' is one name in Kuzu ('$' is a name character), not a and $b
    return list(dict.fromkeys(names))


class GraphNotBuilt(FileNotFoundError):
    """There is no graph at the path yet."""


class GraphLocked(RuntimeError):
    """Another process held the database for longer than a reader waits."""


class WriteQueryRefused(PermissionError):
    """A query that would change the graph, run without ``write=True``."""


@dataclass
class BuildReport:
    """What :func:`build_graph` stored."""

    path: str
    nodes: int
    edges: int
    nested_edges: int
    edges_by_kind: dict[str, int] = field(default_factory=dict)
    nodes_by_category: dict[str, int] = field(default_factory=dict)
    dropped_edges: int = 0  # edges naming a function that is not in the pool
    duplicate_edges: int = 0


# --------------------------------------------------------------------------- frames


def _frame(rows: Any, columns: list[str]) -> pl.DataFrame:
    if isinstance(rows, pl.DataFrame):
        frame = rows
    else:
        records = []
        for row in rows:
            record = row.model_dump(mode="json") if hasattr(row, "model_dump") else dict(row)
            # schemas as JSON text (a Polars struct would merge the keys of every schema)
            records.append(
                {c: json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v for c, v in record.items() if c in columns}
            )
        frame = pl.DataFrame(records, infer_schema_length=None) if records else pl.DataFrame(schema={c: pl.String() for c in columns})
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"graph build: the table lacks column(s) {', '.join(missing)}; expected {', '.join(columns)}")
    return frame.select(columns)


def _node_frame(tools: Any) -> pl.DataFrame:
    frame = _frame(tools, NODE_COLUMNS).cast(
        {
            "name": pl.String(),
            "category": pl.String(),
            "tool_class": pl.String(),
            "description": pl.String(),
            "executable": pl.Boolean(),
            "parameters": pl.String(),
            "response": pl.String(),
        }
    )
    return frame.unique(subset="name", keep="first", maintain_order=True)


def _edge_frame(edges: Any, names: set[str], report: BuildReport) -> pl.DataFrame:
    frame = _frame(edges, EDGE_COLUMNS).cast(
        {
            "src": pl.String(),
            "dst": pl.String(),
            "kind": pl.String(),
            "nested": pl.Boolean(),
            "evidence": pl.String(),
            "judge": pl.String(),
            "score": pl.Float64(),
            "category": pl.String(),
        }
    )
    known = frame.filter(pl.col("src").is_in(list(names)) & pl.col("dst").is_in(list(names)) & (pl.col("src") != pl.col("dst")))
    report.dropped_edges = frame.height - known.height
    deduped = known.sort("score", descending=True).unique(subset=["src", "dst"], keep="first").sort(["src", "dst"])
    report.duplicate_edges = known.height - deduped.height
    return deduped.rename({"src": "from", "dst": "to"})


# --------------------------------------------------------------------------- writing


@contextlib.contextmanager
def reader_lock(path: str | os.PathLike, wait_s: float) -> Iterator[None]:
    """A shared hold on the writer lock (``<path>.lock``): while it is held no writer that
    takes :func:`writer_lock` is inside the database (Kuzu refuses a read-only open while a
    writer has it, and a reader that opens while a writer checkpoints cannot replay its
    shadow pages). Readers share it; waits up to ``wait_s`` for a writer to finish."""
    lock = Path(f"{Path(path)}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        for attempt in _lock_waits(path, wait_s, first=0.01, longest=0.2, held=lambda e: isinstance(e, BlockingIOError)):
            with attempt:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def writer_lock(path: str | os.PathLike) -> Iterator[None]:
    """The single-writer lock of a graph (``<path>.lock``), held for the duration."""
    lock = Path(f"{Path(path)}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
    wal = Path(f"{path}.wal")
    if wal.exists():
        wal.unlink()


def leftovers(path: str | os.PathLike) -> list[Path]:
    """Half-built or set-aside copies of the graph that a killed build left beside it
    (``.graph.kuzu.building-*``, ``.graph.kuzu.old-*``); the next build removes them."""
    path = Path(path)
    found = {*path.parent.glob(f".{path.name}.building-*"), *path.parent.glob(f".{path.name}.old-*")}
    return sorted(p for p in found if not p.name.endswith(".wal"))


def build_graph(path: str | os.PathLike, tools: Any, edges: Any) -> BuildReport:
    """Build the graph at ``path`` from the function pool and the judged edges.

    ``tools``: :class:`magnet_lib.models.Tool` rows or a ``function_pool`` table;
    ``edges``: :class:`magnet_lib.models.Edge` rows or ``dependency_edges`` tables. Edges naming
    an unknown function or a self-loop are dropped (counted in the report); duplicate pairs
    keep the highest score. The database is written to a fresh file under the writer lock and
    renamed over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nodes = _node_frame(tools)
    report = BuildReport(path=str(path), nodes=nodes.height, edges=0, nested_edges=0)
    rels = _edge_frame(edges, set(nodes["name"].to_list()), report)
    report.edges = rels.height
    report.nested_edges = int(rels["nested"].sum()) if rels.height else 0
    report.edges_by_kind = dict(Counter(rels["kind"].to_list()))
    report.nodes_by_category = dict(Counter(nodes["category"].to_list()))
    with writer_lock(path):
        for leftover in leftovers(path):  # of builds that were killed: nobody else builds while we hold the lock
            _remove(leftover)
        fresh = path.with_name(f".{path.name}.building-{uuid.uuid4().hex[:8]}")
        try:
            db = kuzu.Database(str(fresh))
            conn = kuzu.Connection(db)
            for statement in SCHEMA:
                conn.execute(statement)
            if nodes.height:
                conn.execute("COPY Function FROM nodes")  # Kuzu scans the DataFrame named in the statement
            if rels.height:
                conn.execute("COPY DEPENDS_ON FROM rels")
            conn.close()
            db.close()
            old = None
            if path.is_dir():  # a database of another layout: move it aside, then swap
                old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
                path.rename(old)
            os.replace(fresh, path)
            stale_wal = Path(f"{path}.wal")
            if stale_wal.exists():
                stale_wal.unlink()
            if old is not None:
                _remove(old)
        finally:
            _remove(fresh)
    return report


def replace_category(path: str | os.PathLike, category: str, tools: Any, edges: Any) -> BuildReport:
    """Replace one category's Function nodes and DEPENDS_ON edges in the graph at ``path``
    (created with its schema when absent); the other categories are left as they are, so
    cross-category Cypher keeps working. One transaction under the writer lock: a reader
    sees the category before or after, never half of it. A function name that another
    category already stores is dropped (counted in ``dropped_edges`` for its edges).
    ``tools`` / ``edges``: the category's ``function_pool`` and ``dependency_edges`` rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nodes = _node_frame(tools).filter(pl.col("category") == category)
    with writer_lock(path):
        for leftover in leftovers(path):  # of whole-graph builds that were killed (see build_graph)
            _remove(leftover)
        fresh = not path.exists()
        db = _open_database(path, read_only=False, lock_wait_s=LOCK_WAIT_S)
        conn = kuzu.Connection(db)
        try:
            if fresh:
                for statement in SCHEMA:
                    conn.execute(statement)
            taken = conn.execute(
                "MATCH (f:Function) WHERE f.category <> $category AND f.name IN $names RETURN f.name",
                {"category": category, "names": nodes["name"].to_list()},
            )
            others = set()
            while taken.has_next():
                others.add(taken.get_next()[0])
            nodes = nodes.filter(~pl.col("name").is_in(list(others)))
            report = BuildReport(path=str(path), nodes=nodes.height, edges=0, nested_edges=0)
            rels = _edge_frame(edges, set(nodes["name"].to_list()), report)
            report.edges = rels.height
            report.nested_edges = int(rels["nested"].sum()) if rels.height else 0
            report.edges_by_kind = dict(Counter(rels["kind"].to_list()))
            report.nodes_by_category = {category: nodes.height} if nodes.height else {}
            conn.execute("BEGIN TRANSACTION")
            try:
                conn.execute("MATCH (f:Function) WHERE f.category = $category DETACH DELETE f", {"category": category})
                if nodes.height:
                    conn.execute("COPY Function FROM nodes")
                if rels.height:
                    conn.execute("COPY DEPENDS_ON FROM rels")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
            db.close()
    return report


#: how long a writer replacing a category waits for a lock another process holds on the database file
LOCK_WAIT_S = 10.0


# --------------------------------------------------------------------------- reading


def _open_database(path: Path, read_only: bool, lock_wait_s: float) -> kuzu.Database:
    """Open the database, retrying for up to ``lock_wait_s`` while another process holds its
    lock (a write query or a build that is still open)."""

    def held(exc: BaseException) -> bool:
        # a writer holds the file, or (read-only) it is checkpointing: its shadow pages are not replayed yet
        text = str(exc).lower()
        return isinstance(exc, RuntimeError) and ("lock" in text or (read_only and "shadow pages" in text))

    for attempt in _lock_waits(path, lock_wait_s, first=0.05, longest=0.5, held=held):
        with attempt:
            return kuzu.Database(str(path), read_only=read_only)
    raise AssertionError("unreachable")  # pragma: no cover - tenacity returns or raises


def _lock_waits(path: Any, wait_s: float, *, first: float, longest: float, held) -> tenacity.Retrying:
    """Attempts while another process holds the graph (``held(exception)``), with doubling
    pauses from ``first`` to ``longest``, for up to ``wait_s``; then GraphLocked."""

    def give_up(state: tenacity.RetryCallState):
        raise GraphLocked(
            f"the graph at {path} is held by another process (a write query or a 'dependency_graph' run); "
            f"waited {wait_s:g}s. Try again when it is done."
        ) from None

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(held),
        wait=tenacity.wait_exponential(multiplier=first, max=longest),
        stop=tenacity.stop_after_delay(wait_s),
        retry_error_callback=give_up,
    )


class GraphConnection:
    """An open database and connection; :meth:`execute` returns rows as dicts."""

    def __init__(self, path: str | os.PathLike, read_only: bool = True, lock_wait_s: float = 5.0):
        path = Path(path)
        if not path.exists():
            raise GraphNotBuilt(f"no dependency graph at {path}; materialize 'dependency_graph' first (magnet run)")
        self.path = path
        self.read_only = read_only
        self._db = _open_database(path, read_only, lock_wait_s)
        self._conn = kuzu.Connection(self._db)

    def execute(self, cypher: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        result = self._conn.execute(cypher, dict(params or {}))
        results = result if isinstance(result, list) else [result]
        rows: list[dict[str, Any]] = []
        for res in results:
            columns = res.get_column_names()
            while res.has_next():
                rows.append({c: _plain(v) for c, v in zip(columns, res.get_next())})
        return rows

    def close(self) -> None:
        self._conn.close()
        self._db.close()

    def __enter__(self) -> GraphConnection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _plain(value: Any) -> Any:
    """Kuzu values as plain JSON-friendly Python (nodes and rels lose their internal ids)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in ("_id", "_src", "_dst")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def open_graph(path: str | os.PathLike, read_only: bool = True, lock_wait_s: float = 5.0) -> GraphConnection:
    """Open the graph; read-only unless asked (a writer should hold :func:`writer_lock`). While
    another process holds the database, wait up to ``lock_wait_s`` seconds for it."""
    return GraphConnection(path, read_only=read_only, lock_wait_s=lock_wait_s)


def write_clause(cypher: str) -> str | None:
    """What in ``cypher`` would change the graph or reach outside it, e.g. 'DETACH DELETE',
    'LOAD' or 'CALL read_csv', or None for a pure read.

    Decided from the tokens as Kuzu's lexer splits them: a keyword counts wherever it stands
    outside strings, comments and `escaped` names (a name that is also a keyword, like a
    property called ``set``, must be written in backticks); ``CALL`` may only name a function of
    :data:`READ_CALLS`, and ``CALL name = value`` (a setting) is refused."""
    tokens = tokenize(cypher)
    found: list[str] = []
    for i, token in enumerate(tokens):
        if token.kind != "word":
            continue
        word = token.text.upper()
        if word in _WRITE_WORDS:
            found.append(word)
        elif word == "CALL":
            target = tokens[i + 1] if i + 1 < len(tokens) else None
            after = tokens[i + 2] if i + 2 < len(tokens) else None
            name = target.text.strip("`").upper() if target is not None and target.kind in ("word", "escaped") else ""
            if name not in READ_CALLS or (after is not None and after.text == "="):
                found.append(f"CALL {target.text if target is not None else ''}".strip())
    return " ".join(dict.fromkeys(found)) or None


class MissingParameter(ValueError):
    """A ``$name`` the query uses without a value, or a value the query does not use."""


def query(
    path: str | os.PathLike,
    cypher: str,
    params: Mapping[str, Any] | None = None,
    write: bool = False,
    lock_wait_s: float = 5.0,
) -> list[dict[str, Any]]:
    """Run one Cypher statement; ``params`` are bound as ``$name`` query parameters (never
    pasted into the text), and every ``$name`` needs one. Without ``write=True`` a query that
    changes the graph or reaches outside it (files, extensions, other databases) is refused,
    and the database is opened read-only anyway. A reader waits up to ``lock_wait_s`` for a
    writer that holds the database."""
    clause = write_clause(cypher)
    if clause and not write:
        raise WriteQueryRefused(
            f"refused: the query contains {clause}, which changes the graph or reaches outside it (files, extensions, "
            f"other databases, settings). Queries are read-only unless you pass write=True (CLI: --write); a name that "
            f"is also a keyword is read when written in backticks. Note the graph is rebuilt from the dependency_edges "
            f"tables on the next 'dependency_graph' run, so manual changes do not last."
        )
    params = dict(params or {})
    used = query_parameters(cypher)
    missing = [name for name in used if name not in params]
    if missing:
        raise MissingParameter(
            f"the query uses {', '.join('$' + n for n in missing)} but no value was given "
            f"(CLI: {' '.join(f'--param {n}=VALUE' for n in missing)})"
        )
    unused = sorted(set(params) - set(used))
    if unused:
        raise MissingParameter(f"parameter(s) {', '.join(unused)} given but the query does not use {', '.join('$' + n for n in unused)}")
    if write:
        with writer_lock(path), open_graph(path, read_only=False, lock_wait_s=lock_wait_s) as graph:
            return graph.execute(cypher, params)
    with open_graph(path, read_only=True, lock_wait_s=lock_wait_s) as graph:
        return graph.execute(cypher, params)


def _adjacency(graph: GraphConnection, category: str) -> dict[str, list[tuple[str, bool]]]:
    nodes = graph.execute("MATCH (f:Function) WHERE f.category = $category RETURN f.name AS name", {"category": category})
    out: dict[str, list[tuple[str, bool]]] = {row["name"]: [] for row in nodes}
    rows = graph.execute(
        "MATCH (a:Function)-[r:DEPENDS_ON]->(b:Function) WHERE a.category = $category "
        "RETURN a.name AS src, b.name AS dst, r.nested AS nested ORDER BY src, dst",
        {"category": category},
    )
    for row in rows:
        out.setdefault(row["src"], []).append((row["dst"], bool(row["nested"])))
    return out


def adjacency(path: str | os.PathLike, category: str) -> dict[str, list[tuple[str, bool]]]:
    """Out-edges of every function of a category, for the walks: ``{src: [(dst, nested), ...]}``
    sorted by dst; functions without out-edges map to an empty list."""
    with open_graph(path) as graph:
        return _adjacency(graph, category)


def _functions(graph: GraphConnection, category: str | None) -> list[dict[str, Any]]:
    cypher = "MATCH (f:Function) " + ("WHERE f.category = $category " if category else "") + "RETURN f ORDER BY f.name"
    rows = graph.execute(cypher, {"category": category} if category else None)
    out = []
    for row in rows:
        node = {k: v for k, v in row["f"].items() if not k.startswith("_")}
        for key in ("parameters", "response"):
            node[key] = json.loads(node[key]) if node.get(key) else {}
        out.append(node)
    return out


def functions(path: str | os.PathLike, category: str | None = None) -> list[dict[str, Any]]:
    """The Function nodes (of a category), parameters and response decoded from JSON."""
    with open_graph(path) as graph:
        return _functions(graph, category)


def _edges_by_kind(graph: GraphConnection, category: str | None) -> dict[str, int]:
    where = "WHERE a.category = $category " if category else ""
    rows = graph.execute(
        f"MATCH (a:Function)-[r:DEPENDS_ON]->(:Function) {where}RETURN r.kind AS kind, r.nested AS nested, count(*) AS n",
        {"category": category} if category else None,
    )
    counts: Counter = Counter()
    for row in rows:
        counts[row["kind"]] += row["n"]
        if row["nested"]:
            counts["nested"] += row["n"]
    return dict(counts)


def edges_by_kind(path: str | os.PathLike, category: str | None = None) -> dict[str, int]:
    """Edge counts per kind (of a category), plus ``nested``."""
    with open_graph(path) as graph:
        return _edges_by_kind(graph, category)


@dataclass
class CategoryView:
    """What the walks and the augmentation read of one category, in one read-only open of the
    database (each open costs milliseconds and may wait for a writer): the same values as
    :func:`adjacency`, :func:`functions`, :func:`iter_edges` and :func:`edges_by_kind` of the
    category, and the number of functions stored over every category."""

    adjacency: dict[str, list[tuple[str, bool]]]
    functions: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    edges_by_kind: dict[str, int]
    all_functions: int


def read_category(path: str | os.PathLike, category: str, lock_wait_s: float = 5.0) -> CategoryView:
    """One category's part of the graph, read in one open (see :class:`CategoryView`), under
    :func:`reader_lock`: a category run reading while another category's run writes waits for
    the write to end instead of meeting Kuzu's lock."""
    with reader_lock(path, lock_wait_s), open_graph(path, lock_wait_s=lock_wait_s) as graph:
        return CategoryView(
            adjacency=_adjacency(graph, category),
            functions=_functions(graph, category),
            edges=graph.execute(_EDGES.format(where="WHERE a.category = $category "), {"category": category}),
            edges_by_kind=_edges_by_kind(graph, category),
            all_functions=graph.execute("MATCH (f:Function) RETURN count(*) AS n")[0]["n"],
        )


def stats(path: str | os.PathLike) -> dict[str, Any]:
    """Node and edge counts of the stored graph."""
    with open_graph(path) as graph:
        nodes = graph.execute("MATCH (f:Function) RETURN count(*) AS n")[0]["n"]
        edges = graph.execute("MATCH ()-[r:DEPENDS_ON]->() RETURN count(*) AS n")[0]["n"]
    return {"nodes": nodes, "edges": edges, "edges_by_kind": edges_by_kind(path)}


def iter_edges(path: str | os.PathLike, category: str | None = None) -> Iterable[dict[str, Any]]:
    """Every stored edge (of a category) as a dict with src, dst and the edge's properties."""
    where = "WHERE a.category = $category " if category else ""
    return query(path, _EDGES.format(where=where), {"category": category} if category else None)


_EDGES = (
    "MATCH (a:Function)-[r:DEPENDS_ON]->(b:Function) {where}"
    "RETURN a.name AS src, b.name AS dst, r.kind AS kind, r.nested AS nested, r.evidence AS evidence, "
    "r.judge AS judge, r.score AS score ORDER BY src, dst"
)
