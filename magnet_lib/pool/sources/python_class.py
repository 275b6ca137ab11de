"""Python classes as executable categories (``[python]`` in ``source.toml``).

The class's public methods are the tools. Their schemas come from the methods as for the
built-in environments (:mod:`magnet_lib.pool.envs.base`): the type hints (``Literal`` gives an
enum), the Google-style docstring (first paragraph = description, ``Args:`` = parameter
descriptions) and, when there is one, the return annotation (the response schema; a value
that is not an object is returned as ``{"result": value}``). With ``docs`` the tools are the
entries of that OpenAI/BFCL docs file instead (each must name a public method).

Every episode gets a fresh instance (``class(**init)``; a constructor parameter ``seed`` that
``init`` leaves out receives the episode's seed). A call runs in a worker thread with a time
limit; an exception becomes a structured ``{"error": {"code": <exception class>, "message"}}``
output (a :class:`~magnet_lib.pool.envs.ToolError` keeps its code), so nothing raises out of
an episode. A call that overruns its limit leaves the instance unusable for the rest of the
episode (its state may be half-changed); the thread cannot be stopped and finishes on its own.

Two optional methods are not tools, as for the built-ins: ``user_values()`` (values a user
could state, parameter name -> list) and ``state()`` (the JSON view of the world; default:
the instance's public attributes).
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import sys
import threading
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic_core import to_jsonable_python

from magnet_lib.models import Tool, ToolReject
from magnet_lib.pool.envs.base import ToolError, clean_schema, error_output
from magnet_lib.pool.sources.config import SourceConfig, source_reject

#: methods with a meaning of their own, never tools
RESERVED = frozenset({"user_values", "state"})


class CallTimeout(Exception):
    pass


def run_limited(fn: Callable[[], Any], seconds: float) -> Any:
    """``fn()`` in a daemon thread, waiting at most ``seconds`` (CallTimeout after that)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    worker = threading.Thread(target=target, name="magnet-python-tool", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise CallTimeout(f"did not return within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


@dataclass
class MethodSpec:
    name: str
    arguments_model: type[BaseModel]
    description: str
    parameters: dict[str, Any]
    response: dict[str, Any]


def _response_schema(returns: Any) -> dict[str, Any]:
    if returns is None or returns is inspect.Signature.empty or returns is type(None):
        return {}
    schema = clean_schema(TypeAdapter(returns).json_schema(), collapse_optional=False)
    if schema.get("type") == "object":
        return schema
    return {"type": "object", "properties": {"result": schema}, "required": ["result"]}


def method_spec(cls: type, fn: Callable) -> MethodSpec:
    """Schemas of one method from its signature and docstring (TypeError saying what is missing)."""
    doc = docstring_parser.parse(inspect.getdoc(fn) or "")
    description = "\n\n".join(p for p in (doc.short_description, doc.long_description) if p)
    param_docs = {p.arg_name: p.description for p in doc.params}
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:
        raise TypeError(f"type hints cannot be resolved: {exc}") from exc
    fields: dict[str, Any] = {}
    for pname, param in list(inspect.signature(fn).parameters.items())[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"parameter '{pname}': *args/**kwargs cannot be described to a model")
        if pname not in hints:
            raise TypeError(f"parameter '{pname}' needs a type hint")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (hints[pname], Field(default, description=param_docs.get(pname) or None))
    model = create_model(f"{cls.__name__}_{fn.__name__}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    parameters = clean_schema(model.model_json_schema())
    parameters.pop("additionalProperties", None)
    parameters.setdefault("properties", {})
    parameters.setdefault("required", [])
    return MethodSpec(fn.__name__, model, description, parameters, _response_schema(hints.get("return")))


def _plain_result(value: Any) -> dict[str, Any]:
    plain = to_jsonable_python(value)
    return plain if isinstance(plain, dict) else {"result": plain}


@dataclass
class LoadedClass:
    """A user class with its tools: what the pool shows and what episodes instantiate."""

    config: SourceConfig
    cls: type
    #: the tools' methods: public methods not excluded (with ``docs``: those it documents)
    methods: dict[str, Callable] = field(default_factory=dict)
    #: schemas and argument models derived from the signatures (empty with ``docs``)
    specs: dict[str, MethodSpec] = field(default_factory=dict)
    #: what the signatures say, in the pool's entry form (name, description, parameters, ...)
    entries: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[ToolReject] = field(default_factory=list)

    @property
    def tool_class(self) -> str:
        return self.section.tool_class or self.section.class_name

    @property
    def section(self):
        return self.config.python

    def init_kwargs(self, seed: int) -> dict[str, Any]:
        kwargs = dict(self.section.init)
        try:
            takes_seed = "seed" in inspect.signature(self.cls).parameters
        except (TypeError, ValueError):
            takes_seed = False
        if takes_seed and "seed" not in kwargs:
            kwargs["seed"] = seed
        return kwargs

    def construct(self, seed: int) -> Any:
        return run_limited(lambda: self.cls(**self.init_kwargs(seed)), self.section.call_timeout)


def source_ref(config: SourceConfig) -> str:
    """``Tool.source`` of a Python-class tool: the source file and the section."""
    return f"{config.path}#python"


def _where(config: SourceConfig) -> str:
    section = config.python
    return str(config.folder / section.file) if section.file else f"module {section.module}"


def _import(config: SourceConfig) -> Any:
    section = config.python
    if section.module:
        return importlib.import_module(section.module)
    path = config.inside(section.file)
    name = f"magnet_user_tools.{config.category.replace('-', '_')}_{config.version()}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(config.folder)
    sys.path.insert(0, folder)  # the file may import its neighbours
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def _public_methods(cls: type, exclude: set[str]) -> dict[str, Callable]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in RESERVED and name not in exclude
    }


_LOADED: dict[tuple[str, str], LoadedClass | list[ToolReject]] = {}


def load_class(config: SourceConfig) -> LoadedClass | list[ToolReject]:
    """The class and its tools, or the rejects when the file does not import, has no such
    class or the class cannot be built (cached per data version)."""
    key = (str(config.path), config.version())
    if key not in _LOADED:
        _LOADED[key] = _load_class(config)
    return _LOADED[key]


def _load_class(config: SourceConfig) -> LoadedClass | list[ToolReject]:
    section = config.python
    where = _where(config)
    label = f"<class {section.class_name}>"

    def reject(fld: str, message: str) -> list[ToolReject]:
        return [source_reject(config.path, config.category, fld, message, tool=label)]

    try:
        module = _import(config)
    except BaseException as exc:  # a user file may raise anything, SystemExit included
        return reject("python.module" if section.module else "python.file", f"{where} does not import: {type(exc).__name__}: {exc}")
    cls = getattr(module, section.class_name, None)
    if not isinstance(cls, type):
        return reject("python.class", f"{where} has no class '{section.class_name}'")
    loaded = LoadedClass(config=config, cls=cls)
    try:
        loaded.construct(seed=0)
    except BaseException as exc:
        return reject("python.init", f"{where}: {section.class_name}(**init) failed: {type(exc).__name__}: {exc}")
    loaded.methods = _public_methods(cls, set(section.exclude))
    if section.docs:
        return loaded  # the tools are the documented methods: see documented_tools
    for name, fn in loaded.methods.items():
        try:
            spec = method_spec(cls, fn)
        except Exception as exc:  # a hint pydantic cannot describe, ...
            message = str(exc).split("\n\n")[0]
            loaded.rejects.append(source_reject(config.path, config.category, "parameters", f"{where}: {message}", tool=name))
            continue
        loaded.specs[name] = spec
        loaded.entries.append(
            {"name": name, "description": spec.description, "parameters": spec.parameters, "response": spec.response,
             "tool_class": loaded.tool_class}
        )  # fmt: skip
    return loaded


def documented_tools(loaded: LoadedClass, docs_path: Path, docs: list[Tool]) -> tuple[list[Tool], list[ToolReject]]:
    """The tools of a ``docs`` file (already validated) that name a public method, as this
    class's executable tools; an entry naming no method is a reject. BFCL docs may name
    ``Class.method``. Arguments reach the method as documented (the runtime checks them
    against the documented schema first)."""
    config = loaded.config
    tools: list[Tool] = []
    rejects: list[ToolReject] = []
    for tool in docs:
        short = tool.name.rsplit(".", 1)[-1]
        if short not in loaded.methods:
            message = f"names '{short}', which is not a public method of {config.python.class_name}"
            rejects.append(source_reject(docs_path, config.category, "name", message, tool.name))
            continue
        tool_class = tool.tool_class if tool.tool_class != config.category else loaded.tool_class
        tools.append(tool.model_copy(update={"name": short, "tool_class": tool_class, "source": source_ref(config), "executable": True}))
    return tools, rejects


class PythonEnvironment:
    """One episode's instance of a user class; :meth:`call` never raises."""

    def __init__(self, loaded: LoadedClass, seed: int):
        self.loaded = loaded
        self.seed = seed
        self.log: list[tuple[str, dict[str, Any]]] = []
        self.broken: str | None = None
        self.instance: Any = None
        try:
            self.instance = loaded.construct(seed)
        except BaseException as exc:
            self.broken = f"{loaded.section.class_name}(**init) failed: {type(exc).__name__}: {exc}"

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.broken:
            return error_output("environment_unavailable", self.broken)
        if name not in self.loaded.methods:
            return error_output("unknown_function", f"{self.loaded.section.class_name} has no tool '{name}'")
        given = dict(arguments or {})
        spec = self.loaded.specs.get(name)
        if spec is not None:  # from the signature: arguments converted as the hints say
            try:
                args = spec.arguments_model.model_validate(given)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors())
                return error_output("invalid_arguments", f"{name}: {problems}")
            given = {k: getattr(args, k) for k in given}
        method = getattr(self.instance, name)
        self.log.append((name, dict(arguments or {})))
        try:
            return _plain_result(run_limited(lambda: method(**given), self.loaded.section.call_timeout))
        except CallTimeout as exc:
            self.broken = f"{name} {exc}; the instance is not used again in this episode"
            return error_output("timeout", f"{name} {exc}")
        except ToolError as exc:
            return error_output(exc.code, exc.message)
        except Exception as exc:
            code = getattr(exc, "code", None)
            return error_output(code if isinstance(code, str) and code else type(exc).__name__, f"{name}: {exc}")

    def state(self) -> dict[str, Any]:
        if self.instance is None:
            return {}
        custom = getattr(self.instance, "state", None)
        try:
            raw = custom() if callable(custom) else {k: v for k, v in vars(self.instance).items() if not k.startswith("_")}
            return to_jsonable_python(raw, fallback=str)
        except Exception as exc:
            return {"_state_error": f"{type(exc).__name__}: {exc}"}

    def user_values(self) -> dict[str, list[Any]]:
        custom = getattr(self.instance, "user_values", None)
        if not callable(custom):
            return {}
        try:
            values = custom()
            return {str(k): list(v) for k, v in dict(values).items()}
        except Exception:
            return {}

    def __deepcopy__(self, memo: dict) -> PythonEnvironment:
        """A copy of the world (snapshots before a retried turn, plan probes). An instance
        that cannot be deep-copied is rebuilt and its calls replayed."""
        new = object.__new__(PythonEnvironment)
        new.loaded, new.seed, new.broken = self.loaded, self.seed, self.broken
        new.log = copy.deepcopy(self.log, memo)
        try:
            new.instance = copy.deepcopy(self.instance, memo)
        except Exception:
            replay = PythonEnvironment(self.loaded, self.seed)
            for name, arguments in self.log:
                replay.call(name, arguments)
            new.instance, new.broken = replay.instance, replay.broken
        return new
