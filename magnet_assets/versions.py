"""Dagster's own versioning for every asset: code versions and data versions.

- **Code version** of an asset: a hash of the source of its own function, of the project
  modules it really uses (the library modules named in :data:`USES` and what they import
  inside the project, found by reading their ``import`` statements), of the prompt templates
  those modules name, and of the values of the settings it reads. An edit elsewhere (a CLI
  module, an unrelated stage) changes nothing. The built-in environments' code is not in it:
  it is part of each category's ``tool_sources`` data version.
- **Data version** of every materialization: a hash of the table it wrote (or of the files of
  a checkpoint), so a rebuild that produces identical data leaves downstream fresh.

Dagster's stale status (the UI's "Unsynced") compares both with what each materialization
recorded; ``magnet run`` materializes exactly what that status calls stale or missing.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import io
import json
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from magnet_lib.settings import MagnetSettings

#: the tag under which a materialization records its data version (Dagster's own name)
DATA_VERSION_TAG = "dagster/data_version"

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ROOT / "magnet_lib" / "prompts"
#: project packages whose modules count as code an asset uses
PROJECT_PACKAGES = ("magnet_lib", "graph_db")
#: modules never part of a code version: the environments (in the source version), the test
#: server, and the settings schema (the values an asset reads are hashed instead)
EXCLUDED = ("magnet_lib.pool.envs", "magnet_lib.testing", "magnet_lib.settings")

#: settings that change what the model answers (not how fast or where from)
LLM_DATA_FIELDS = ("model", "temperature", "max_tokens", "task_models")

#: per asset: the library modules its body calls and the settings it reads ("seed",
#: "graph", "graph.walk_length", "llm" = the LLM fields that change answers, ...)
USES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "function_pool": (("magnet_lib.pool.function_pool",), ("builtin_tools",)),
    "tool_rejects": (("magnet_lib.pool.function_pool",), ("builtin_tools",)),
    "dependency_edges": (("magnet_lib.graph.dependency",), ("graph.candidates", "graph.judge_batch", "graph.prefilter", "seed", "llm")),
    "dependency_graph": (("graph_db.store",), ()),
    "fsps": (
        ("magnet_lib.graph.walk", "graph_db.store"),
        (
            "graph.walk_length",
            "graph.walks_per_node",
            "graph.walk_tries",
            "graph.min_turns",
            "seed",
            "target_items",
            "graph.multi_turn_per_walk",
            "distill.mix_single",
            "distill.mix_multi",
            "distill.mix_irrelevance",
        ),
    ),  # fmt: skip
    "augmented_fsps": (("magnet_lib.graph.node_operations", "graph_db.store"), ("graph", "seed")),
    "query_call_pairs": (
        ("magnet_lib.translation.episodes",),
        ("graph.max_calls_per_turn", "graph.max_parallel_calls", "distill", "seed", "llm"),
    ),
    "sft_trajectories": (("magnet_lib.distillation.teacher", "magnet_lib.distillation.quality"), ("distill", "seed", "llm")),
    "single_turn_and_irrelevance": (("magnet_lib.distillation.single_turn",), ("distill", "seed", "llm")),
    "sft_set": (
        ("magnet_lib.distillation.mixing", "magnet_lib.distillation.quality", "magnet_lib.evaluation.contamination"),
        ("distill", "seed", "bfcl.drop_contaminated", "bfcl.tool_source"),
    ),
    "sft_checkpoint": (("magnet_lib.training.sft",), ("train", "seed")),
    "negative_hints": (("magnet_lib.training.hints", "magnet_lib.training.student"), ("train", "distill", "graph", "seed", "llm")),
    "mdpo_pairs": (("magnet_lib.training.hints", "magnet_lib.training.student"), ("train", "distill", "seed", "llm")),
    "mdpo_checkpoint": (("magnet_lib.training.mdpo",), ("train", "seed")),
    "contamination_report": (
        ("magnet_lib.evaluation.bfcl", "magnet_lib.evaluation.contamination", "magnet_lib.pool.bfcl_source"),
        ("bfcl.drop_contaminated", "bfcl.tool_source"),
    ),
    "eval_report": (
        ("magnet_lib.evaluation.multi_turn", "magnet_lib.training.hints", "magnet_lib.training.student"),
        ("train", "graph.max_calls_per_turn", "seed", "llm"),
    ),
}

_TEMPLATE = re.compile(r"""template\s*(?::\s*ClassVar\[str\])?\s*=\s*["']([\w.\-]+\.(?:md|jinja|txt))["']""")


@cache
def _module_path(name: str) -> Path | None:
    """The project file of a module (None: not a module of this tree, e.g. ``pkg.Class``)."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_project(name: str) -> bool:
    return name.split(".")[0] in PROJECT_PACKAGES and not any(name == e or name.startswith(e + ".") for e in EXCLUDED)


#: an import statement's text (a parenthesized name list may span lines); docstrings can give
#: false hits, which only add modules to a code version
_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+[.\w]+[ \t]+import[ \t]+(?:\([^)]*\)|[^\n]*)|import[ \t]+[^\n]*)", re.MULTILINE)


@cache
def _imports(name: str, path: Path) -> frozenset[str]:
    """The project modules one module imports, at its top or inside functions (read once per
    process: every asset's closure shares most of its modules). Only the import statements
    are parsed, found by a pattern: parsing and walking whole modules took a second per process."""
    text = path.read_text(encoding="utf-8")
    try:
        nodes = [node for match in _IMPORT.finditer(text) for node in ast.parse(match.group(0).strip()).body]
    except SyntaxError:  # a statement the pattern cut short: the whole module, walked
        nodes = list(ast.walk(ast.parse(text)))
    return imported_modules(nodes, name if path.name == "__init__.py" else name.rpartition(".")[0])


def imported_modules(nodes: Iterable[ast.AST], package: str) -> frozenset[str]:
    """The project modules that the import statements among ``nodes`` name (relative ones
    resolved against ``package``)."""
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return frozenset(n for n in found if _is_project(n) and _module_path(n) is not None)


@cache
def module_closure(entries: tuple[str, ...]) -> tuple[str, ...]:
    """The project modules ``entries`` import, directly or not (themselves included)."""
    seen: set[str] = set()
    stack = [e for e in entries if _is_project(e)]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_path(name)
        if path is not None:
            stack.extend(_imports(name, path) - seen)
    return tuple(sorted(seen))


def _settings_values(settings: MagnetSettings, keys: Iterable[str]) -> dict[str, Any]:
    data = settings.public_dict()
    out: dict[str, Any] = {}
    for key in keys:
        if key == "llm":
            out[key] = {f: data["llm"][f] for f in LLM_DATA_FIELDS}
            continue
        value: Any = data
        for part in key.split("."):
            value = value[part]
        out[key] = value
    return out


def code_version(asset: str, settings: MagnetSettings, function_source: str = "") -> str:
    """The code version of one asset (see the module docstring)."""
    modules, keys = USES[asset]
    digest = hashlib.sha256(function_source.encode())
    for name in module_closure(tuple(modules)):
        path = _module_path(name)
        text = path.read_text(encoding="utf-8")
        digest.update(name.encode())
        digest.update(text.encode())
        for template in sorted(set(_TEMPLATE.findall(text))):
            file = PROMPTS / template
            if file.is_file():
                digest.update(template.encode())
                digest.update(file.read_bytes())
    digest.update(json.dumps(_settings_values(settings, keys), sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def _function_source(assets_def: dg.AssetsDefinition) -> str:
    fn = getattr(getattr(assets_def.op, "compute_fn", None), "decorated_fn", None)
    try:
        return inspect.getsource(fn) if fn is not None else ""
    except (OSError, TypeError):
        return ""


def with_code_versions(assets: list, settings: MagnetSettings) -> list:
    """The assets with their code versions set from ``settings`` (assets not in
    :data:`USES`, e.g. ones another module adds, keep theirs)."""
    out = []
    for a in assets:
        if not isinstance(a, dg.AssetsDefinition) or not any(k.to_user_string() in USES for k in a.keys):
            out.append(a)
            continue
        source = _function_source(a)

        def replace(spec: dg.AssetSpec, source=source) -> dg.AssetSpec:
            name = spec.key.to_user_string()
            return spec.replace_attributes(code_version=code_version(name, settings, source)) if name in USES else spec

        out.extend(dg.map_asset_specs(replace, [a]))
    return out


# --------------------------------------------------------------------------- data versions


def frame_version(frame: pl.DataFrame) -> dg.DataVersion:
    """A content hash of a table (schema and rows, in order)."""
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="uncompressed")
    return dg.DataVersion(hashlib.sha256(buffer.getvalue()).hexdigest()[:16])


def files_version(folder: Path, skip: Iterable[str] = ("run.json",)) -> dg.DataVersion:
    """A content hash of a folder's files (a checkpoint), skipping records that hold times."""
    digest = hashlib.sha256()
    skip = set(skip)
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.name not in skip):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return dg.DataVersion(digest.hexdigest()[:16])


def versioned(frame: pl.DataFrame, metadata: dict | None = None, output_name: str = "result") -> dg.Output:
    """An asset output carrying its content hash as the data version."""
    return dg.Output(frame, output_name=output_name, metadata=metadata or {}, data_version=frame_version(frame))


def json_version(value: Any) -> dg.DataVersion:
    """A content hash of a JSON-like value."""
    return dg.DataVersion(hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16])
