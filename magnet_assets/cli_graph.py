"""``magnet graph``: Cypher over the dependency graph, and a picture of one category.

    magnet graph query "MATCH (a:Function {name: $n})-[r:DEPENDS_ON]->(b) RETURN b.name, r.kind" --param n=plan_route
    magnet graph query "..." --json
    magnet graph show --category navigation --out navigation.png

Queries are read-only unless ``--write`` is given; ``--param`` values are bound as query
parameters (JSON when they parse as JSON, else strings), never pasted into the text.
"""

import json
from collections import Counter
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

graph_app = typer.Typer(help="Query and draw the dependency graph (Kuzu, read-only unless --write).", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _graph_path(graph: Path | None) -> Path:
    if graph is not None:
        return graph
    from magnet_lib.settings import load_settings

    return load_settings().graph_path


def parse_params(values: list[str] | None) -> dict[str, Any]:
    """``k=v`` pairs; ``v`` is read as JSON when it parses (numbers, booleans, lists), else a string."""
    params: dict[str, Any] = {}
    for raw in values or []:
        if "=" not in raw:
            raise typer.BadParameter(f"'{raw}': expected NAME=VALUE", param_hint="--param")
        key, value = raw.split("=", 1)
        key = key.strip().lstrip("$")
        if not key:
            raise typer.BadParameter(f"'{raw}': the name is empty", param_hint="--param")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else str(value)


@graph_app.command("query")
def query_command(
    cypher: str = typer.Argument(..., help="A Cypher statement; refer to parameters as $name."),
    param: list[str] | None = typer.Option(None, "--param", "-p", help="Query parameter NAME=VALUE (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON instead of a table."),
    write: bool = typer.Option(
        False,
        "--write",
        help="Allow a statement that changes the graph or reaches outside it (CREATE, SET, DELETE, LOAD FROM, COPY, EXPORT, ATTACH, ...).",
    ),
    graph: Path | None = typer.Option(None, "--graph", help="Database path (default $MAGNET_HOME/graph.kuzu)."),
) -> None:
    """Run a Cypher query against the dependency graph."""
    import graph_db

    try:
        rows = graph_db.query(_graph_path(graph), cypher, parse_params(param), write=write)
    except (graph_db.WriteQueryRefused, graph_db.MissingParameter) as exc:
        err.print(f"[red]{escape(str(exc))}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except (graph_db.GraphNotBuilt, graph_db.GraphLocked) as exc:
        err.print(f"[red]{exc}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except RuntimeError as exc:  # Kuzu reports parse and binder errors as RuntimeError
        err.print(f"[red]query failed:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    if not rows:
        console.print("0 rows")
        return
    columns = list(rows[0])
    table = Table(show_lines=False, title=f"{len(rows)} row{'s' if len(rows) != 1 else ''}")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(escape(_cell(row.get(c))) for c in columns))
    console.print(table)


KIND_COLOURS = {"full_input": "#1f77b4", "partial_input": "#2ca02c", "premise": "#ff7f0e"}


def _layers(g) -> dict[str, int]:
    """Left-to-right layer of every node: the longest path from a source, cycles collapsed."""
    import networkx as nx

    dag = nx.condensation(g)
    depth: dict[int, int] = {}
    for scc in nx.topological_sort(dag):
        depth[scc] = max((depth[p] + 1 for p in dag.predecessors(scc)), default=0)
    return {node: depth[dag.graph["mapping"][node]] for node in g.nodes}


def draw_category(path: Path, category: str, out: Path) -> dict[str, int]:
    """Draw a category's graph to a PNG, sources on the left: edges coloured by kind, nested
    edges thick and solid, the others thin and dashed; nodes coloured by tool class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx
    from matplotlib.lines import Line2D

    import graph_db

    nodes = graph_db.functions(path, category)
    if not nodes:
        raise typer.BadParameter(f"no function of category '{category}' in the graph at {path}", param_hint="--category")
    edges = list(graph_db.iter_edges(path, category))
    g = nx.DiGraph()
    for node in sorted(nodes, key=lambda n: (n["tool_class"], n["name"])):
        g.add_node(node["name"], tool_class=node["tool_class"])
    for e in edges:
        g.add_edge(e["src"], e["dst"], kind=e["kind"], nested=bool(e["nested"]))
    layers = _layers(g)
    nx.set_node_attributes(g, layers, "layer")
    tallest = max(Counter(layers.values()).values())
    width = max(9.0, min(40.0, 3.2 * (max(layers.values()) + 1) + 3))
    height = max(6.0, min(40.0, 0.8 * tallest + 2))
    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    pos = nx.multipartite_layout(g, subset_key="layer", align="vertical", scale=1.0)
    classes = sorted({n["tool_class"] for n in nodes})
    cmap = plt.get_cmap("tab20")
    node_colours = [cmap(classes.index(g.nodes[n]["tool_class"]) % 20) for n in g.nodes]
    node_size = 500 if len(g) <= 40 else 180
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=node_colours, node_size=node_size, alpha=0.95, edgecolors="#333333")
    for is_nested in (False, True):
        chosen = [(a, b) for a, b, d in g.edges(data=True) if d["nested"] is is_nested]
        if not chosen:
            continue
        nx.draw_networkx_edges(
            g,
            pos,
            ax=ax,
            edgelist=chosen,
            edge_color=[KIND_COLOURS.get(g.edges[e]["kind"], "#999999") for e in chosen],
            width=2.6 if is_nested else 0.9,
            style="solid" if is_nested else "dashed",
            alpha=0.85 if is_nested else 0.45,
            arrows=True,
            arrowsize=14 if is_nested else 9,
            node_size=node_size,
            connectionstyle="arc3,rad=0.12",
        )
    labels = nx.draw_networkx_labels(g, pos, ax=ax, font_size=8 if len(g) <= 40 else 5, verticalalignment="bottom")
    for text in labels.values():
        text.set_y(text.get_position()[1])
        text.set_bbox({"facecolor": "white", "alpha": 0.6, "edgecolor": "none", "pad": 0.5})
    handles = [Line2D([0], [0], color=c, lw=2, label=k) for k, c in KIND_COLOURS.items()]
    handles.append(Line2D([0], [0], color="black", lw=2.6, label="nested: thick, solid"))
    handles.append(Line2D([0], [0], color="black", lw=0.9, ls="--", label="not nested: thin, dashed"))
    handles += [Line2D([0], [0], marker="o", color="w", markerfacecolor=cmap(i % 20), markersize=9, label=c) for i, c in enumerate(classes)]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, title="edges / tool classes")
    nested_count = sum(1 for _, _, d in g.edges(data=True) if d["nested"])
    ax.set_title(f"dependency graph: {category} ({len(nodes)} functions, {len(edges)} edges, {nested_count} nested); sources on the left")
    ax.axis("off")
    ax.margins(0.08)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return {"nodes": len(nodes), "edges": len(edges), "nested": nested_count}


@graph_app.command("show")
def show_command(
    category: str = typer.Option(..., "--category", "-c", help="The category to draw."),
    out: Path | None = typer.Option(None, "--out", "-o", help="PNG to write (default $MAGNET_HOME/graph_<category>.png)."),
    graph: Path | None = typer.Option(None, "--graph", help="Database path (default $MAGNET_HOME/graph.kuzu)."),
) -> None:
    """Draw one category's dependency graph to a PNG: edges coloured by kind (full_input blue,
    partial_input green, premise orange), nested edges thick and solid, the others thin and dashed;
    nodes coloured by tool class."""
    import graph_db

    path = _graph_path(graph)
    if out is None:
        out = path.parent / f"graph_{category}.png"
    try:
        counts = draw_category(path, category, out)
    except graph_db.GraphNotBuilt as exc:
        err.print(f"[red]{exc}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(f"wrote {out} ({counts['nodes']} functions, {counts['edges']} edges, {counts['nested']} nested)")


def register(app: typer.Typer) -> None:
    """Add ``magnet graph`` to the main CLI."""
    app.add_typer(graph_app, name="graph")
