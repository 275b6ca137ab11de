"""``source.toml``: where a category's tools run (a Python class or an MCP server).

A category folder of ``MAGNET_TOOLS_DIR`` may hold a ``source.toml`` beside (or instead of)
its spec files::

    [python]
    file = "bank.py"            # or: module = "mypkg.bank"
    class = "Bank"              # public methods are the tools; a fresh instance per episode
    init = { seed = 0 }         # constructor keyword arguments (optional)
    docs = "bank_docs.jsonl"    # optional BFCL/OpenAI-style docs instead of the signatures

    [mcp]
    command = ["python", "server.py"]    # a stdio server started by the run; or
    # url = "http://127.0.0.1:8765/mcp"  # a streamable-HTTP server already running
    reset_tool = "reset"                 # optional: called between episodes
    env = ["NOTES_API_KEY"]              # environment variables passed to the server

The file is code the user trusts: it runs their class or starts their command. Paths (``file``,
``docs``, the command's working folder) stay inside the category folder; keys never appear in
the file: ``env`` names variables to pass on, ``headers`` values name them as ``${VAR}``.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from magnet_lib.models import ToolReject

SOURCE_FILE = "source.toml"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class PythonSection(BaseModel):
    """``[python]``: a class whose public methods are the category's tools."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    file: str | None = Field(None, description="A .py file inside the category folder.")
    module: str | None = Field(None, description="An importable module (instead of file).")
    class_name: str = Field(alias="class", description="The class; a fresh instance per episode.")
    init: dict[str, Any] = Field(default_factory=dict, description="Constructor keyword arguments.")
    docs: str | None = Field(None, description="OpenAI/BFCL-style docs of the methods, used instead of their signatures.")
    exclude: list[str] = Field(default_factory=list, description="Public methods that are not tools.")
    tool_class: str | None = Field(None, description="The tools' class label; default: the class name.")
    call_timeout: float = Field(10.0, gt=0, description="Seconds one call may run before it is an error output.")

    @model_validator(mode="after")
    def _one_origin(self) -> PythonSection:
        if (self.file is None) == (self.module is None):
            raise ValueError("give exactly one of 'file' and 'module'")
        return self


class McpSection(BaseModel):
    """``[mcp]``: an MCP server whose ``tools/list`` are the category's tools."""

    model_config = ConfigDict(extra="forbid")

    command: list[str] | None = Field(None, description="A stdio server started by the run, run in the category folder.")
    url: str | None = Field(None, description="A streamable-HTTP server already running.")
    env: list[str] = Field(default_factory=list, description="Names of environment variables passed on to a stdio server.")
    headers: dict[str, str] = Field(default_factory=dict, description="HTTP headers for url; keys only as ${VAR}.")
    reset_tool: str | None = Field(None, description="A tool called at the start of every episode (not offered).")
    exclude: list[str] = Field(default_factory=list, description="Tools of the server that are not offered.")
    tool_class: str | None = Field(None, description="The tools' class label; default: the server's name.")
    start_timeout: float = Field(30.0, gt=0, description="Seconds to start and list tools.")
    call_timeout: float = Field(30.0, gt=0, description="Seconds one call may take.")

    @model_validator(mode="after")
    def _one_target(self) -> McpSection:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of 'command' and 'url'")
        if self.command is not None and not self.command:
            raise ValueError("'command' is empty")
        if self.url is not None and urlsplit(self.url).password:
            raise ValueError("url holds a password: put the key in an environment variable and write ${NAME}")
        for name, value in self.headers.items():
            if not _VAR.search(value):
                raise ValueError(f"header '{name}' holds a literal value: put the key in an environment variable and write ${{NAME}}")
        for name in self.env:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"env: '{name}' is not an environment variable name (values are never written here)")
        return self


class SourceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    python: PythonSection | None = None
    mcp: McpSection | None = None

    @model_validator(mode="after")
    def _something(self) -> SourceFile:
        if self.python is None and self.mcp is None:
            raise ValueError("needs a [python] or an [mcp] table")
        return self


@dataclass(frozen=True)
class SourceConfig:
    """A parsed ``source.toml`` with its place on disk."""

    path: Path
    category: str
    python: PythonSection | None
    mcp: McpSection | None

    @property
    def folder(self) -> Path:
        return self.path.parent

    def inside(self, name: str) -> Path:
        """A path named in the file, resolved inside the category folder (or ValueError)."""
        target = (self.folder / name).resolve()
        if not target.is_relative_to(self.folder.resolve()):
            raise ValueError(f"'{name}' is outside the category folder {self.folder}")
        return target

    def named_files(self) -> list[Path]:
        """The files the source runs or reads (their bytes are part of the data version)."""
        files: list[Path] = []
        if self.python is not None:
            for name in (self.python.file, self.python.docs):
                if name:
                    files.append(self.folder / name)
        if self.python is not None and self.python.module:
            origin = _module_file(self.python.module)
            if origin is not None:
                files.append(origin)
        if self.mcp is not None and self.mcp.command:
            for arg in self.mcp.command[1:]:
                candidate = self.folder / arg
                if not arg.startswith("-") and candidate.is_file():
                    files.append(candidate)
        return files

    def version(self) -> str:
        digest = hashlib.sha256(self.path.read_bytes())
        for path in self.named_files():
            digest.update(path.name.encode())
            digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        return digest.hexdigest()[:16]


def source_version(path: Path) -> str:
    """The data version part of a ``source.toml``: its bytes and those of the files it names
    (a file that does not parse still has a version: its bytes)."""
    config, _ = read_source(path, "")
    return config.version() if config is not None else hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def is_source_ref(source: str) -> bool:
    """Whether a ``Tool.source`` names a ``source.toml`` section (``<path>#python`` / ``#mcp``)."""
    return source.endswith(("#python", "#mcp"))


def _module_file(module: str) -> Path | None:
    """The file of an importable module, without importing it (its parents may be imported)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin and Path(spec.origin).is_file() else None


def expand_vars(value: str, environ: dict[str, str]) -> str:
    """``${VAR}`` replaced from the environment (KeyError naming the variable when unset)."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        if name not in environ:
            raise KeyError(f"environment variable {name} is not set")
        return environ[name]

    return _VAR.sub(one, value)


def source_reject(config_path: Path, category: str, where: str, message: str, tool: str = "<source>") -> ToolReject:
    return ToolReject(category=category, file=str(config_path), tool=tool, field=where, message=message)


def read_source(path: Path, category: str) -> tuple[SourceConfig | None, list[ToolReject]]:
    """The parsed file, or the rejects saying what is wrong with it (field = dotted key)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, [source_reject(path, category, "file", str(exc))]
    except tomllib.TOMLDecodeError as exc:
        return None, [source_reject(path, category, "toml", f"malformed TOML: {exc}")]
    try:
        parsed = SourceFile.model_validate(data)
    except ValidationError as exc:
        rejects = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "source"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            rejects.append(source_reject(path, category, where, message))
        return None, rejects
    config = SourceConfig(path=path, category=category, python=parsed.python, mcp=parsed.mcp)
    rejects = []
    for section, name in (("python.file", config.python and config.python.file), ("python.docs", config.python and config.python.docs)):
        if not name:
            continue
        try:
            target = config.inside(name)
        except ValueError as exc:
            rejects.append(source_reject(path, category, section, str(exc)))
            continue
        if not target.is_file():
            rejects.append(source_reject(path, category, section, f"no such file: {target}"))
    if rejects:
        return None, rejects
    return config, []
