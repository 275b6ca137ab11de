"""The function pool: built-in environments plus imported tool specs, validated.

Sources of a category (the partition key):
- a built-in environment whose ``category`` is that name (``magnet_lib.pool.envs``);
- ``MAGNET_TOOLS_DIR/<category>/`` holding OpenAI-format tool lists
  (``[{"type": "function", "function": {...}}]``, one JSON file) or BFCL-format function docs
  (JSON lines, ``"type": "dict"`` parameters). Both may add ``response`` (JSON Schema of the
  output) and ``tool_class`` to a function.

Every bad tool becomes a :class:`ToolReject` naming the file, the tool and the field; the good
tools of the same file still load. Nothing fails silently.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from magnet_lib.models import Tool, ToolReject
from magnet_lib.pool.bfcl_source import environments as bfcl_environments
from magnet_lib.pool.envs import ToolEnvironment, builtin_environments
from magnet_lib.settings import MagnetSettings

SPEC_SUFFIXES = (".json", ".jsonl")
JSON_TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}
# BFCL's Python-flavoured type names and their JSON Schema equivalents
BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "list": "array", "int": "integer", "str": "string", "bool": "boolean"}
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
CATEGORY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


@dataclass
class CategorySource:
    """Where a category's tools come from."""

    category: str
    environment: type[ToolEnvironment] | None = None
    spec_files: list[Path] = field(default_factory=list)

    def version(self) -> str:
        """Hash of everything that defines the category's tools (code of the built-in
        environment, bytes of every spec file): the data version of ``tool_sources``."""
        digest = hashlib.sha256()
        if self.environment is not None:
            digest.update(inspect.getsource(inspect.getmodule(self.environment)).encode())
        for path in self.spec_files:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]


@dataclass
class PoolPart:
    tools: list[Tool] = field(default_factory=list)
    rejects: list[ToolReject] = field(default_factory=list)


def discover_categories(settings: MagnetSettings) -> dict[str, CategorySource]:
    """Every category with its sources: built-in environments and user spec folders."""
    sources: dict[str, CategorySource] = {}
    if settings.builtin_tools:
        for name, env in builtin_environments().items():
            sources[name] = CategorySource(name, environment=env)
    if settings.bfcl.tool_source:  # BFCL's classes, renamed (opt-in; needs bfcl-eval)
        for name, env in bfcl_environments().items():
            sources[name] = CategorySource(name, environment=env)
    tools_dir = settings.tools_dir
    if tools_dir is not None and Path(tools_dir).is_dir():
        for folder in sorted(p for p in Path(tools_dir).iterdir() if p.is_dir()):
            files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in SPEC_SUFFIXES)
            if files:
                sources.setdefault(folder.name, CategorySource(folder.name)).spec_files = files
    return sources


# --------------------------------------------------------------------------- reading spec files


def _read_entries(path: Path) -> tuple[list[Any], list[str]]:
    """Raw function entries of a spec file, and parse errors (one per bad line)."""
    text = path.read_text(encoding="utf-8")
    try:
        value = json.loads(text)
        return (value if isinstance(value, list) else [value]), []
    except json.JSONDecodeError as whole_error:
        entries: list[Any] = []
        errors: list[str] = []
        lines = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
        if len(lines) <= 1:
            return [], [f"malformed JSON: {whole_error.msg} at line {whole_error.lineno} column {whole_error.colno}"]
        for lineno, line in lines:  # JSON lines (BFCL)
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as exc:
                errors.append(f"malformed JSON on line {lineno}: {exc.msg} at column {exc.colno}")
        return entries, errors


def _normalize_types(schema: Any) -> Any:
    """BFCL type names -> JSON Schema type names, recursively (unknown names are kept)."""
    if isinstance(schema, list):
        return [_normalize_types(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            lowered = value.lower()
            if lowered == "any":
                continue
            out[key] = BFCL_TYPES.get(lowered, lowered if lowered in JSON_TYPES else value)
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _normalize_types(sub) for name, sub in value.items()}
        else:
            out[key] = _normalize_types(value)
    return out


def _type_problems(schema: Any, where: str) -> Iterator[tuple[str, str]]:
    """(field path, message) for every unknown type in a schema."""
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    for k in kinds:
        if k not in JSON_TYPES:
            yield f"{where}.type", f"has type '{k}', expected a JSON Schema type ({', '.join(sorted(JSON_TYPES))})"
    for name, sub in (schema.get("properties") or {}).items() if isinstance(schema.get("properties"), dict) else []:
        yield from _type_problems(sub, f"{where}.properties.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _type_problems(schema["items"], f"{where}.items")


def validate_entry(entry: Any, index: int) -> tuple[dict[str, Any] | None, list[tuple[str, str, str]]]:
    """Normalise one function entry; return it or the problems as (tool, field, message)."""
    if not isinstance(entry, dict):
        return None, [(f"<index {index}>", "entry", f"expected an object, got {type(entry).__name__}")]
    fn = entry.get("function") if entry.get("type") == "function" else entry
    if not isinstance(fn, dict):
        return None, [(f"<index {index}>", "function", "expected an object with name, description, parameters")]
    raw_name = fn.get("name")
    tool = raw_name if isinstance(raw_name, str) and raw_name.strip() else f"<index {index}>"
    problems: list[tuple[str, str]] = []
    if not isinstance(raw_name, str) or not raw_name.strip():
        problems.append(("name", "is missing or empty"))
    elif not NAME_PATTERN.match(raw_name):
        problems.append(("name", "must start with a letter or '_' and use only letters, digits, '_', '.', '-' (at most 64)"))
    description = fn.get("description")
    if not isinstance(description, str) or not description.strip():
        problems.append(("description", "is missing or empty"))
    parameters = _normalize_types(fn.get("parameters", {"type": "object", "properties": {}}))
    response = _normalize_types(fn.get("response", fn.get("returns", {})))
    if not isinstance(parameters, dict):
        problems.append(("parameters", f"expected a JSON Schema object, got {type(parameters).__name__}"))
    else:
        if parameters.get("type") != "object":
            problems.append(("parameters.type", f"must be 'object' (or BFCL 'dict'), got {parameters.get('type')!r}"))
        props = parameters.get("properties", {})
        if not isinstance(props, dict):
            problems.append(("parameters.properties", "must be an object mapping names to schemas"))
            props = {}
        required = parameters.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            problems.append(("parameters.required", "must be a list of parameter names"))
        else:
            for name in required:
                if name not in props:
                    problems.append(("parameters.required", f"names '{name}', which is not in parameters.properties"))
        problems.extend(_type_problems(parameters, "parameters"))
        if not problems:
            try:
                jsonschema.Draft202012Validator.check_schema(parameters)
            except jsonschema.SchemaError as exc:
                path = ".".join(str(p) for p in exc.path) or "parameters"
                problems.append((f"parameters.{path}" if path != "parameters" else path, f"not valid JSON Schema: {exc.message}"))
    if not isinstance(response, dict):
        problems.append(("response", f"expected a JSON Schema object, got {type(response).__name__}"))
    else:
        problems.extend(_type_problems(response, "response"))
        try:
            jsonschema.Draft202012Validator.check_schema(response)
        except jsonschema.SchemaError as exc:
            problems.append(("response", f"not valid JSON Schema: {exc.message}"))
    if problems:
        return None, [(tool, f, m) for f, m in problems]
    tool_class = fn.get("tool_class") or fn.get("x-tool-class")
    parameters.setdefault("properties", {})
    parameters.setdefault("required", [])
    return {
        "name": raw_name,
        "description": description.strip(),
        "parameters": parameters,
        "response": response,
        "tool_class": tool_class if isinstance(tool_class, str) and tool_class.strip() else None,
    }, []


def load_spec_file(path: Path, category: str) -> PoolPart:
    """Tools and rejects of one spec file (spec-only tools: ``executable=False``).

    Parsed once per file content: a category's duplicate check reads every other file."""
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size, category)
    except OSError:
        key = None
    if key is not None and key in _SPEC_CACHE:
        cached = _SPEC_CACHE[key]
        return PoolPart(tools=list(cached.tools), rejects=list(cached.rejects))
    part = _parse_spec_file(path, category)
    if key is not None:
        if len(_SPEC_CACHE) > 4096:
            _SPEC_CACHE.clear()
        _SPEC_CACHE[key] = part
    return PoolPart(tools=list(part.tools), rejects=list(part.rejects))


_SPEC_CACHE: dict[tuple, PoolPart] = {}


def _parse_spec_file(path: Path, category: str) -> PoolPart:
    part = PoolPart()
    try:
        entries, parse_errors = _read_entries(path)
    except (OSError, UnicodeDecodeError) as exc:
        return PoolPart(rejects=[ToolReject(category=category, file=str(path), tool="<file>", field="file", message=str(exc))])
    for message in parse_errors:
        part.rejects.append(ToolReject(category=category, file=str(path), tool="<file>", field="json", message=message))
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        spec, problems = validate_entry(entry, index)
        for tool, fld, message in problems:
            part.rejects.append(ToolReject(category=category, file=str(path), tool=tool, field=fld, message=message))
        if spec is None:
            continue
        if spec["name"] in seen:
            part.rejects.append(
                ToolReject(
                    category=category, file=str(path), tool=spec["name"], field="name", message="duplicate tool name in the same file"
                )
            )
            continue
        seen.add(spec["name"])
        part.tools.append(
            Tool(
                name=spec["name"],
                category=category,
                tool_class=spec["tool_class"] or category,
                description=spec["description"],
                parameters=spec["parameters"],
                response=spec["response"],
                source=str(path),
                executable=False,
            )
        )
    return part


# --------------------------------------------------------------------------- categories


def _load_source(source: CategorySource) -> PoolPart:
    part = PoolPart()
    if source.environment is not None:
        part.tools.extend(source.environment.tools())
    for path in source.spec_files:
        loaded = load_spec_file(path, source.category)
        part.tools.extend(loaded.tools)
        part.rejects.extend(loaded.rejects)
    return part


def _owners(sources: dict[str, CategorySource]) -> dict[str, str]:
    """Tool name -> the source that owns it (built-ins first, then categories and files in
    sorted order): a later tool with the same name is a duplicate."""
    owners: dict[str, str] = {}
    ordered = sorted(sources.values(), key=lambda s: (s.environment is None, s.category))
    for source in ordered:
        if source.environment is not None:
            for t in source.environment.tools():
                owners.setdefault(t.name, f"builtin:{source.category}")
    for source in ordered:
        for path in source.spec_files:
            for t in load_spec_file(path, source.category).tools:
                owners.setdefault(t.name, str(path))
    return owners


def load_category(settings: MagnetSettings, category: str, sources: dict[str, CategorySource] | None = None) -> PoolPart:
    """Validated tools and rejects of one category, names checked against the whole pool."""
    sources = sources if sources is not None else discover_categories(settings)
    if category not in sources:
        raise KeyError(f"unknown category '{category}'; known: {', '.join(sorted(sources))}")
    source = sources[category]
    if not CATEGORY_PATTERN.match(category):
        return PoolPart(
            rejects=[
                ToolReject(
                    category=category,
                    file=str(p),
                    tool="<file>",
                    field="category",
                    message="category folder names use letters, digits, '_' and '-' only",
                )
                for p in source.spec_files
            ]
        )
    part = _load_source(source)
    owners = _owners(sources)
    kept: list[Tool] = []
    for t in part.tools:
        owner = owners.get(t.name)
        mine = f"builtin:{category}" if t.executable else t.source
        if owner is not None and owner != mine:
            part.rejects.append(
                ToolReject(
                    category=category, file=t.source, tool=t.name, field="name", message=f"duplicate tool name: already defined by {owner}"
                )
            )
        else:
            kept.append(t)
    part.tools = kept
    return part


def load_pool(settings: MagnetSettings) -> PoolPart:
    """The whole pool (all categories)."""
    sources = discover_categories(settings)
    pool = PoolPart()
    for category in sorted(sources):
        part = load_category(settings, category, sources)
        pool.tools.extend(part.tools)
        pool.rejects.extend(part.rejects)
    return pool


def validate_arguments(tool: Tool, arguments: dict[str, Any]) -> list[str]:
    """Problems of a call's arguments against the tool's schema (empty when valid).

    Unknown parameters are errors: a call may not invent parameters."""
    problems = []
    unknown = sorted(set(arguments) - set(tool.properties))
    if unknown:
        problems.append(f"{tool.name}: unknown parameter(s) {', '.join(unknown)}")
    validator = jsonschema.Draft202012Validator(tool.parameters)
    for error in validator.iter_errors(arguments):
        where = ".".join(str(p) for p in error.absolute_path) or "arguments"
        problems.append(f"{tool.name}: {where}: {error.message}")
    return problems
