"""The function pool: built-in environments plus imported tool specs, validated.

Sources of a category (the partition key):
- a built-in environment whose ``category`` is that name (``magnet_lib.pool.envs``);
- ``MAGNET_TOOLS_DIR/<category>/`` holding OpenAI-format tool lists
  (``[{"type": "function", "function": {...}}]`` or ``{"tools": [...]}``, one JSON file) or
  BFCL-format function docs (JSON lines, ``"type": "dict"`` parameters). Both may add
  ``response`` (JSON Schema of the output) and ``tool_class`` to a function;
- the same folder's ``source.toml`` naming a Python class or an MCP server that runs the
  category's tools (executable; :mod:`magnet_lib.pool.sources`);
- ToolBench / StableToolBench tool files (RapidAPI JSON with ``api_list``) among the spec files
  (:mod:`magnet_lib.pool.toolbench`).

Every bad tool becomes a :class:`ToolReject` naming the file, the tool and the field; the good
tools of the same file still load. Each file is read in isolation: whatever is wrong with one
(malformed, nested 100,000 deep, too big, not UTF-8) costs only its own tools. Every file or
folder under ``MAGNET_TOOLS_DIR`` that is not read is a reject too (:func:`layout_rejects`, or
the category's own rejects for a file inside a category folder). Nothing fails silently.

A new spec format is one reader: a function ``text -> (entries, problems)`` in
:data:`SPEC_READERS` under its file suffix, or one more shape in :func:`document_entries`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

import jsonschema

from magnet_lib.models import Tool, ToolReject
from magnet_lib.pool.bfcl_source import environments as bfcl_environments
from magnet_lib.pool.envs import ToolEnvironment, builtin_environments
from magnet_lib.pool.sources.config import SOURCE_FILE, SourceConfig, read_source, source_version
from magnet_lib.pool.sources.mcp_server import server_entries
from magnet_lib.pool.sources.python_class import documented_tools, load_class
from magnet_lib.pool.sources.python_class import source_ref as python_ref
from magnet_lib.pool.toolbench import is_toolbench, toolbench_entries
from magnet_lib.settings import MagnetSettings, PoolSettings

JSON_TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}
# BFCL's Python-flavoured type names and their JSON Schema equivalents
BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "list": "array", "int": "integer", "str": "string", "bool": "boolean"}
# names are matched whole (fullmatch): '$' would let a trailing newline through
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
PARAMETER_PATTERN = NAME_PATTERN
CATEGORY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}")
NAME_RULE = "must start with a letter or '_' and use only letters, digits, '_', '.', '-' (at most 64)"
# deeper than this, a JSON text is not parsed at all (Python's parser recurses per level)
PARSE_DEPTH = 400
_JSON_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = re.compile(r"[^\[\]{}]")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


@dataclass
class CategorySource:
    """Where a category's tools come from, and the files in its folder that are not read."""

    category: str
    environment: type[ToolEnvironment] | None = None
    spec_files: list[Path] = field(default_factory=list)
    #: the folder's ``source.toml`` (a Python class or an MCP server), if any
    source_file: Path | None = None
    unused: list[tuple[Path, str]] = field(default_factory=list)  # (path, why it is not read)

    def version(self) -> str:
        """Hash of everything that defines the category's tools (code of the built-in
        environment, bytes of every spec file, ``source.toml`` and the files it names): the
        data version of ``tool_sources``."""
        digest = hashlib.sha256()
        if self.environment is not None:
            digest.update(inspect.getsource(inspect.getmodule(self.environment)).encode())
        if self.source_file is not None:
            digest.update(source_version(self.source_file).encode())
        for path in self.spec_files:
            digest.update(path.name.encode())
            try:
                digest.update(path.read_bytes())
            except OSError as exc:  # unreadable: its reject says so; the version still changes when it does
                digest.update(f"{type(exc).__name__}: {exc.strerror}".encode())
        for path, why in self.unused:  # a new unused file changes the category's rejects
            digest.update(f"unused {path.name}: {why}".encode())
        return digest.hexdigest()[:16]


@dataclass
class PoolPart:
    tools: list[Tool] = field(default_factory=list)
    rejects: list[ToolReject] = field(default_factory=list)


# --------------------------------------------------------------------------- the tools folder


def _link_problem(path: Path) -> str | None:
    """Why a path that is neither a file nor a folder cannot be read."""
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:
            return "symbolic link loop; ignored"
        except OSError:
            return "broken symbolic link (its target does not exist); ignored"
    return None


def _unusable_file(path: Path) -> str | None:
    """Why a file inside a category folder is not read (None: it is a spec file)."""
    if path.name.startswith("."):
        return "hidden file; ignored"
    if path.is_dir():
        return "sub-folders of a category folder are not read; put its spec files in the category folder"
    if not path.is_file():
        return _link_problem(path) or "not a regular file; ignored"
    if path.suffix.lower() in (".yaml", ".yml"):
        return "YAML is not read: write the tools as JSON (.json) or JSON lines (.jsonl)"
    if path.suffix not in SPEC_READERS:
        return f"not a spec file (the readable suffixes are {', '.join(sorted(SPEC_READERS))}); ignored"
    return None


def scan_tools_dir(tools_dir: Path) -> tuple[dict[str, CategorySource], list[ToolReject]]:
    """The category folders of ``tools_dir`` with their spec files, and a reject for every
    entry of ``tools_dir`` that is not used (loose files, bad folder names, folders without a
    spec file, link loops). Never raises."""
    root = Path(tools_dir)
    sources: dict[str, CategorySource] = {}
    rejects: list[ToolReject] = []

    def unused(path: Path, message: str, category: str = "-") -> None:
        rejects.append(ToolReject(category=category, file=str(path), tool="<file>", field="path", message=message))

    if not root.is_dir():
        unused(root, "MAGNET_TOOLS_DIR does not exist or is not a folder; no user tools are read")
        return sources, rejects
    try:
        root_real = root.resolve()
        entries = sorted(root.iterdir())
    except OSError as exc:
        unused(root, f"cannot list MAGNET_TOOLS_DIR: {exc.strerror or exc}")
        return sources, rejects
    seen_folders: dict[Path, str] = {}
    for entry in entries:
        try:
            _scan_entry(entry, root, root_real, seen_folders, sources, unused)
        except OSError as exc:  # e.g. no permission to look inside
            unused(entry, f"cannot be read: {exc.strerror or exc}", category=entry.name)
    return sources, rejects


def _scan_entry(
    entry: Path,
    root: Path,
    root_real: Path,
    seen_folders: dict[Path, str],
    sources: dict[str, CategorySource],
    unused: Callable[..., None],
) -> None:
    """One entry of the tools folder: a category folder (into ``sources``) or a reject."""
    name = entry.name
    if not entry.is_dir():
        if name.startswith("."):
            unused(entry, "hidden file; ignored")
        elif entry.is_file():
            unused(entry, f"files directly in MAGNET_TOOLS_DIR are not read: move it to a category folder, {root}/<category>/{name}")
        else:
            unused(entry, _link_problem(entry) or "not a regular file or folder; ignored")
        return
    if name.startswith("."):
        unused(entry, "hidden folder; ignored")
        return
    if not CATEGORY_PATTERN.fullmatch(name):
        unused(
            entry,
            "category folder names use ASCII letters, digits, '_' and '-' only (at most 64, no spaces or dots); the folder is not read",
            category=name,
        )
        return
    try:
        real = entry.resolve(strict=True)
    except (OSError, RuntimeError):
        unused(entry, "symbolic link loop; ignored", category=name)
        return
    if real == root_real or real in root_real.parents:
        unused(entry, "links back to MAGNET_TOOLS_DIR or above it (a loop); ignored", category=name)
        return
    if real in seen_folders:
        unused(entry, f"the same folder as {seen_folders[real]}; ignored", category=name)
        return
    seen_folders[real] = name
    source = CategorySource(name)
    try:
        children = sorted(entry.iterdir())
    except OSError as exc:
        unused(entry, f"cannot list the folder: {exc.strerror or exc}", category=name)
        return
    if (entry / SOURCE_FILE).is_file():
        source.source_file = entry / SOURCE_FILE
        named = _named_by(source.source_file)  # its Python file, docs file or server script: read by the source
        children = [c for c in children if c != source.source_file and c.resolve() not in named]
    for child in children:
        try:
            why = _unusable_file(child)
        except OSError as exc:
            why = f"cannot be read: {exc.strerror or exc}"
        if why is None:
            source.spec_files.append(child)
        else:
            source.unused.append((child, why))
    if source.spec_files or source.source_file is not None:
        sources[name] = source
    else:
        unused(entry, f"no spec file ({', '.join(sorted(SPEC_READERS))}) in the folder; it is not a category", category=name)
        for child, why in source.unused:
            unused(child, why, category=name)


def discover_categories(settings: MagnetSettings) -> dict[str, CategorySource]:
    """Every category with its sources: built-in environments and user spec folders."""
    sources: dict[str, CategorySource] = {}
    if settings.builtin_tools:
        for name, env in builtin_environments().items():
            sources[name] = CategorySource(name, environment=env)
    if settings.bfcl.tool_source:  # BFCL's classes, renamed (opt-in; needs bfcl-eval)
        for name, env in bfcl_environments().items():
            sources[name] = CategorySource(name, environment=env)
    if settings.tools_dir is not None:
        for name, folder in scan_tools_dir(settings.tools_dir)[0].items():
            source = sources.setdefault(name, CategorySource(name))
            source.spec_files, source.unused, source.source_file = folder.spec_files, folder.unused, folder.source_file
    return sources


def layout_rejects(settings: MagnetSettings) -> list[ToolReject]:
    """What in ``MAGNET_TOOLS_DIR`` belongs to no category (see :func:`scan_tools_dir`)."""
    if settings.tools_dir is None:
        return []
    return scan_tools_dir(settings.tools_dir)[1]


def _named_by(source_file: Path) -> set[Path]:
    """The files a ``source.toml`` names (its Python file, docs file, server script)."""
    config, _ = read_source(source_file, "")
    return {p.resolve() for p in config.named_files()} if config is not None else set()


# --------------------------------------------------------------------------- reading spec files


class NonFinite(str):
    """``NaN`` / ``Infinity`` in a spec: Python's parser accepts them, JSON does not; kept as
    a marker so the tool holding one is rejected with the field's path."""


def _json_depth(text: str) -> int:
    """Deepest nesting of arrays and objects in a JSON text (brackets in strings ignored)."""
    brackets = _NOT_BRACKETS.sub("", _JSON_STRINGS.sub("", text))
    return max(accumulate(_BRACKET_STEP[c] for c in brackets), default=0)


def _parse_json(text: str) -> Any:
    """``json.loads`` that never recurses past :data:`PARSE_DEPTH` and marks NaN/Infinity."""
    depth = _json_depth(text)
    if depth > PARSE_DEPTH:
        raise ValueError(f"JSON nested {depth} levels deep; not read (at most {PARSE_DEPTH} for a file)")
    return json.loads(text, parse_constant=NonFinite, parse_float=_finite_float)


def _finite_float(literal: str) -> float | NonFinite:
    value = float(literal)
    return value if math.isfinite(value) else NonFinite(literal)  # 1e999 is Infinity too


def document_entries(value: Any) -> tuple[list[Any], list[tuple[str, str]]]:
    """The function entries of one parsed JSON document: a list of tools, a ``{"tools": [...]}``
    (or ``"functions"``) wrapper, or a single function object."""
    if isinstance(value, list):
        return value, []
    if isinstance(value, dict) and "name" not in value and "function" not in value:
        for key in ("tools", "functions"):
            if key in value:
                if isinstance(value[key], list):
                    return value[key], []
                return [], [(key, f"expected a list of tools, got {type(value[key]).__name__}")]
    if isinstance(value, dict):
        return [value], []
    return [], [("json", f"expected a list of tools or an object, got {type(value).__name__}")]


def read_json_lines(text: str) -> tuple[list[tuple[str, Any]], list[tuple[str, str]]]:
    """JSON lines (BFCL): one function per line; a bad line is one problem, the rest still load."""
    entries: list[tuple[str, Any]] = []
    problems: list[tuple[str, str]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = _parse_json(line)
        except json.JSONDecodeError as exc:
            problems.append(("json", f"malformed JSON on line {lineno}: {exc.msg} at column {exc.colno}"))
            continue
        except (ValueError, RecursionError) as exc:
            problems.append(("json", f"line {lineno}: {exc if isinstance(exc, ValueError) else 'nested too deeply to read'}"))
            continue
        found, shape_problems = document_entries(value)
        if not found and not shape_problems:
            shape_problems = [("json", "holds no tool (an empty list)")]
        entries.extend((f"<line {lineno}>", e) for e in found)
        problems.extend((f, f"line {lineno}: {m}") for f, m in shape_problems)
    return entries, problems


def _looks_like_json_lines(text: str) -> bool:
    """A file whose first non-empty line is a whole JSON object (BFCL ships JSON lines as .json)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        return isinstance(_parse_json(first), dict) and first.strip() != text.strip()
    except (ValueError, RecursionError):
        return False


def read_json_document(text: str) -> tuple[list[tuple[str, Any]], list[tuple[str, str]]]:
    """One JSON document (OpenAI format); JSON lines too when the first line is a whole object.
    A truncated or malformed document is one problem with its line and column."""
    try:
        value = _parse_json(text)
    except json.JSONDecodeError as exc:
        if _looks_like_json_lines(text):
            return read_json_lines(text)
        return [], [("json", f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]
    except RecursionError:
        return [], [("json", "nested too deeply to read")]
    except ValueError as exc:
        return [], [("json", str(exc))]
    found, problems = document_entries(value)
    return [(f"<index {i}>", e) for i, e in enumerate(found)], problems


#: file suffix -> reader of the file's text: ``text -> ([(label, entry)], [(field, message)])``;
#: the label names an entry whose own name is missing
SPEC_READERS: dict[str, Callable[[str], tuple[list[tuple[str, Any]], list[tuple[str, str]]]]] = {
    ".json": read_json_document,
    ".jsonl": read_json_lines,
}


_SCHEMA_KEYS = {"items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames"}
_SCHEMA_LIST_KEYS = {"anyOf", "oneOf", "allOf", "prefixItems"}


def _child_role(role: str, key: Any) -> str:
    """What a value is inside a JSON Schema: a 'schema', a 'properties' map of names to
    schemas, a list of 'schemas', or 'other' (enum values, defaults, examples...)."""
    if role == "props":
        return "schema"
    if role == "schemas":
        return "schema"
    if role == "schema":
        if key == "properties":
            return "props"
        if key in _SCHEMA_KEYS:
            return "schema"
        if key in _SCHEMA_LIST_KEYS:
            return "schemas"
    return "other"


def _schema_problems(entry: dict[str, Any], limits: PoolSettings) -> list[tuple[str, str]]:
    """Depth, description length, NaN/Infinity and property names anywhere in a function entry,
    walked without recursion so that no nesting can overflow the stack."""
    problems: list[tuple[str, str]] = []
    deepest: dict[str, int] = {}
    stack: list[tuple[Any, tuple[str, ...], int, str]] = [
        (v, (k,), 1, "schema" if k in ("parameters", "response", "returns") else "other") for k, v in entry.items()
    ]
    while stack:
        value, path, depth, role = stack.pop()
        where = ".".join(path)
        if isinstance(value, NonFinite):
            problems.append((where, f"{value} is not a finite number (no NaN or Infinity in a spec)"))
        elif isinstance(value, (dict, list)):
            top = path[0]
            if depth > limits.max_depth:
                deepest[top] = max(deepest.get(top, 0), depth)
                continue  # not walked further: its depth is the problem
            if isinstance(value, dict):
                if role == "props":
                    for name in value:
                        if not PARAMETER_PATTERN.fullmatch(name):
                            problems.append((where, f"property name {name!r} {NAME_RULE}"))
                stack.extend((v, (*path, str(k)), depth + 1, _child_role(role, k)) for k, v in value.items())
            else:
                stack.extend((v, (*path, str(i)), depth + 1, _child_role(role, None)) for i, v in enumerate(value))
        elif path[-1] == "description" and isinstance(value, str) and len(value) > limits.max_description_chars:
            problems.append(
                (where, f"is {len(value):,} characters long; the limit is pool.max_description_chars ({limits.max_description_chars:,})")
            )
    for top, depth in sorted(deepest.items()):
        problems.append((top, f"nested more than {limits.max_depth} levels deep; the limit is pool.max_depth ({limits.max_depth})"))
    return sorted(problems)


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


def validate_entry(
    entry: Any, index: int | str, limits: PoolSettings | None = None
) -> tuple[dict[str, Any] | None, list[tuple[str, str, str]]]:
    """Normalise one function entry; return it or the problems as (tool, field, message).

    ``index`` labels an entry whose name is missing: a position or ``'<line N>'``."""
    limits = limits or PoolSettings()
    label = index if isinstance(index, str) else f"<index {index}>"
    if not isinstance(entry, dict):
        return None, [(label, "entry", f"expected an object, got {type(entry).__name__}")]
    fn = entry.get("function") if entry.get("type") == "function" else entry
    if not isinstance(fn, dict):
        return None, [(label, "function", "expected an object with name, description, parameters")]
    raw_name = fn.get("name")
    tool = raw_name if isinstance(raw_name, str) and raw_name.strip() else label
    problems: list[tuple[str, str]] = []
    if not isinstance(raw_name, str) or not raw_name.strip():
        problems.append(
            (
                "name",
                "is missing or empty"
                if raw_name in (None, "") or isinstance(raw_name, str)
                else f"must be a string, got {type(raw_name).__name__}",
            )
        )
    elif not NAME_PATTERN.fullmatch(raw_name):
        problems.append(("name", f"{raw_name!r} {NAME_RULE}"))
    description = fn.get("description")
    if description is not None and not isinstance(description, str):
        problems.append(("description", f"must be a string, got {type(description).__name__}"))
    elif not isinstance(description, str) or not description.strip():
        problems.append(("description", "is missing or empty"))
    problems.extend(_schema_problems(fn, limits))
    if problems:  # deep or non-finite schemas are not walked further (no recursion on them)
        return None, [(tool, f, m) for f, m in problems]
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
        "tool_class": tool_class.strip() if isinstance(tool_class, str) and tool_class.strip() else None,
    }, []


def load_spec_file(path: Path, category: str, limits: PoolSettings | None = None) -> PoolPart:
    """Tools and rejects of one spec file (spec-only tools: ``executable=False``). Never raises:
    anything wrong with the file is a reject of that file.

    Parsed once per file content: a category's duplicate check reads every other file."""
    path = Path(path)
    limits = limits or PoolSettings()
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size, category, limits.model_dump_json())
    except OSError:
        key = None
    if key is not None and key in _SPEC_CACHE:
        cached = _SPEC_CACHE[key]
        return PoolPart(tools=list(cached.tools), rejects=list(cached.rejects))
    try:
        part = _parse_spec_file(path, category, limits)
    except Exception as exc:  # a last net: one file never takes the pool down
        part = PoolPart(rejects=[_file_reject(category, path, "file", f"could not be read: {type(exc).__name__}: {exc}")])
    if key is not None:
        if len(_SPEC_CACHE) > 4096:
            _SPEC_CACHE.clear()
        _SPEC_CACHE[key] = part
    return PoolPart(tools=list(part.tools), rejects=list(part.rejects))


_SPEC_CACHE: dict[tuple, PoolPart] = {}


def _file_reject(category: str, path: Path, fld: str, message: str) -> ToolReject:
    return ToolReject(category=category, file=str(path), tool="<file>", field=fld, message=message)


def _read_text(path: Path, limits: PoolSettings) -> str:
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise ValueError(f"is {size:,} bytes; the limit is pool.max_file_bytes ({limits.max_file_bytes:,}); not read")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")  # a byte-order mark is allowed
    except UnicodeDecodeError as exc:
        raise ValueError(f"is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _parse_spec_file(path: Path, category: str, limits: PoolSettings) -> PoolPart:
    part = PoolPart()
    reader = SPEC_READERS.get(path.suffix)
    if reader is None:
        return PoolPart(rejects=[_file_reject(category, path, "file", f"no reader for '{path.suffix}' files")])
    try:
        text = _read_text(path, limits)
    except OSError as exc:
        return PoolPart(rejects=[_file_reject(category, path, "file", f"cannot be read: {exc.strerror or exc}")])
    except ValueError as exc:
        return PoolPart(rejects=[_file_reject(category, path, "file", str(exc))])
    if not text.strip():
        return PoolPart(rejects=[_file_reject(category, path, "file", "is empty; it defines no tool")])
    entries, problems = reader(text)
    for fld, message in problems:
        part.rejects.append(_file_reject(category, path, fld, message))
    if not entries and not problems:
        part.rejects.append(_file_reject(category, path, "file", "holds no tool (an empty list)"))
    if any(is_toolbench(e) for _, e in entries):
        expanded, toolbench_problems = toolbench_entries([e for _, e in entries])
        for tool, fld, message in toolbench_problems:
            part.rejects.append(ToolReject(category=category, file=str(path), tool=tool, field=fld, message=message))
        entries = list(enumerate(expanded))
    seen: set[str] = set()
    for label, entry in entries:
        try:
            spec, entry_problems = validate_entry(entry, label, limits)
        except Exception as exc:
            spec, entry_problems = None, [(label, "entry", f"could not be validated: {type(exc).__name__}: {exc}")]
        for tool, fld, message in entry_problems:
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


# --------------------------------------------------------------------------- source.toml (executable)


def load_source_file(path: Path, category: str) -> PoolPart:
    """The executable tools of a category's ``source.toml`` (its Python class, its MCP
    server) and the rejects: a broken file, a class that does not load, a server that does not
    start, and any tool whose schema fails the same validation as a spec file's."""
    config, rejects = read_source(path, category)
    part = PoolPart(rejects=list(rejects))
    if config is None:
        return part
    if config.python is not None:
        loaded = load_class(config)
        if isinstance(loaded, list):
            part.rejects.extend(loaded)
        elif config.python.docs:
            docs_path = config.inside(config.python.docs)
            docs = load_spec_file(docs_path, category)
            tools, problems = documented_tools(loaded, docs_path, docs.tools)
            part.tools.extend(tools)
            part.rejects.extend([*docs.rejects, *problems])
        else:
            part.rejects.extend(loaded.rejects)
            _add_entries(part, config, loaded.entries, python_ref(config))
    if config.mcp is not None:
        entries, problems = server_entries(config)
        part.rejects.extend(problems)
        _add_entries(part, config, entries, f"{config.path}#mcp")
    return part


def _add_entries(part: PoolPart, config: SourceConfig, entries: list[dict[str, Any]], ref: str) -> None:
    for index, entry in enumerate(entries):
        spec, problems = validate_entry(entry, index)
        for tool, fld, message in problems:
            part.rejects.append(ToolReject(category=config.category, file=str(config.path), tool=tool, field=fld, message=message))
        if spec is not None:
            part.tools.append(
                Tool(
                    name=spec["name"],
                    category=config.category,
                    tool_class=spec["tool_class"] or config.category,
                    description=spec["description"],
                    parameters=spec["parameters"],
                    response=spec["response"],
                    source=ref,
                    executable=True,
                )  # fmt: skip
            )


# --------------------------------------------------------------------------- categories


def _load_source(source: CategorySource, limits: PoolSettings) -> PoolPart:
    part = PoolPart()
    if source.environment is not None:
        part.tools.extend(source.environment.tools())
    for path in source.spec_files:
        loaded = load_spec_file(path, source.category, limits)
        part.tools.extend(loaded.tools)
        part.rejects.extend(loaded.rejects)
    if source.source_file is not None:
        loaded = load_source_file(source.source_file, source.category)
        part.tools.extend(loaded.tools)
        part.rejects.extend(loaded.rejects)
    for path, why in source.unused:
        part.rejects.append(_file_reject(source.category, path, "path", why))
    return part


def _owner_key(tool: Tool, category: str) -> str:
    return f"builtin:{category}" if tool.source.startswith("builtin:") else tool.source


def _owners(sources: dict[str, CategorySource], limits: PoolSettings) -> dict[str, str]:
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
            for t in load_spec_file(path, source.category, limits).tools:
                owners.setdefault(t.name, str(path))
        if source.source_file is not None:
            for t in load_source_file(source.source_file, source.category).tools:
                owners.setdefault(t.name, t.source)
    return owners


def load_category(settings: MagnetSettings, category: str, sources: dict[str, CategorySource] | None = None) -> PoolPart:
    """Validated tools and rejects of one category, names checked against the whole pool."""
    sources = sources if sources is not None else discover_categories(settings)
    if category not in sources:
        raise KeyError(f"unknown category '{category}'; known: {', '.join(sorted(sources))}")
    source = sources[category]
    part = _load_source(source, settings.pool)
    owners = _owners(sources, settings.pool)
    kept: list[Tool] = []
    for t in part.tools:
        owner = owners.get(t.name)
        mine = _owner_key(t, category)
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
    """The whole pool (all categories), and the rejects of what belongs to none."""
    sources = discover_categories(settings)
    pool = PoolPart(rejects=layout_rejects(settings))
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
