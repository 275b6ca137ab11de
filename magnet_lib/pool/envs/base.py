"""The shared base of the built-in executable environments.

A category is one :class:`ToolEnvironment` subclass: its state is built from a seed in
``setup`` (a fresh instance per episode) and its tools are methods marked with :func:`tool`.
Each tool's schemas have one source of truth, the method itself:

- parameters: the type hints (``Literal`` gives an enum) and the ``Args:`` section of the
  Google-style docstring (one description per parameter; every parameter must have one);
- response: the return annotation, a pydantic model whose fields carry descriptions;
- description: the docstring's first paragraph.

A tool signals a failure by raising :class:`ToolError`; :meth:`ToolEnvironment.call` turns it
(and invalid arguments) into a structured ``{"error": {"code", "message"}}`` output. Nothing
raises out of an environment.
"""

from __future__ import annotations

import copy
import copyreg
import inspect
import random
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from magnet_lib.models import Tool


class ToolError(Exception):
    """A failure a tool reports to its caller (unknown id, insufficient funds, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def error_output(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def is_error(output: Any) -> bool:
    return isinstance(output, dict) and set(output) == {"error"}


@dataclass(frozen=True)
class _ToolMark:
    tool_class: str


def tool(tool_class: str) -> Callable[[Callable], Callable]:
    """Mark an environment method as a tool of the given class (e.g. 'Flight booking')."""

    def mark(fn: Callable) -> Callable:
        fn.__magnet_tool__ = _ToolMark(tool_class)
        return fn

    return mark


def clean_schema(schema: dict[str, Any], collapse_optional: bool = True) -> dict[str, Any]:
    """Pydantic's JSON Schema made plain for tool specs: refs inlined, titles gone.

    With ``collapse_optional`` (parameters) ``Optional[X]`` becomes ``X``: the default says it
    may be left out. Response schemas keep ``null`` so an output field may really be None."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = defs[node["$ref"].split("/")[-1]]
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return walk(merged)
        out = {}
        for key, value in node.items():
            if key in ("title", "$defs"):
                continue
            if key == "properties":  # property *names* may be 'title'
                out[key] = {name: walk(sub) for name, sub in value.items()}
                continue
            out[key] = walk(value)
        options = out.get("anyOf") if collapse_optional else None
        if options is not None:  # Optional[X] -> X
            non_null = [o for o in options if o.get("type") != "null"]
            if len(non_null) == 1:
                out.pop("anyOf")
                out = {**non_null[0], **out}
        if out.get("default", "missing") is None:
            out.pop("default")
        return out

    return walk(schema)


class ToolSpec:
    """Schemas and validator of one tool method, derived from its signature and docstring."""

    def __init__(self, env_cls: type[ToolEnvironment], fn: Callable):
        self.fn = fn
        self.name = fn.__name__
        where = f"{env_cls.__module__}.{env_cls.__name__}.{self.name}"
        doc = docstring_parser.parse(inspect.getdoc(fn) or "")
        description = "\n\n".join(p for p in (doc.short_description, doc.long_description) if p)
        if not description:
            raise TypeError(f"{where}: tool needs a docstring description")
        self.description = description
        param_docs = {p.arg_name: p.description for p in doc.params}
        hints = typing.get_type_hints(fn)
        fields: dict[str, Any] = {}
        for pname, param in inspect.signature(fn).parameters.items():
            if pname == "self":
                continue
            if pname not in hints:
                raise TypeError(f"{where}: parameter '{pname}' needs a type hint")
            if not param_docs.get(pname):
                raise TypeError(f"{where}: parameter '{pname}' needs a description in 'Args:'")
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[pname] = (hints[pname], Field(default, description=param_docs[pname]))
        self.arguments_model = create_model(f"{self.name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
        returns = hints.get("return")
        if not (isinstance(returns, type) and issubclass(returns, BaseModel)):
            raise TypeError(f"{where}: return annotation must be a pydantic model (the response schema)")
        self.response_model: type[BaseModel] = returns
        self.tool_class = fn.__magnet_tool__.tool_class

    @cached_property
    def parameters(self) -> dict[str, Any]:
        schema = clean_schema(self.arguments_model.model_json_schema())
        schema.pop("additionalProperties", None)
        schema.setdefault("properties", {})
        schema.setdefault("required", [])
        return schema

    @cached_property
    def response(self) -> dict[str, Any]:
        schema = clean_schema(self.response_model.model_json_schema(), collapse_optional=False)
        if self.response_model.__doc__:
            schema["description"] = inspect.cleandoc(self.response_model.__doc__)
        return schema


def _rebuild_model(cls: type[BaseModel], values: dict, fields_set: tuple, extra: Any, private: Any) -> BaseModel:
    """A pydantic model from what :func:`_reduce_model` kept (what ``BaseModel.__setstate__`` sets)."""
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", values)
    object.__setattr__(model, "__pydantic_fields_set__", set(fields_set))
    object.__setattr__(model, "__pydantic_extra__", extra)
    object.__setattr__(model, "__pydantic_private__", private)
    return model


def _reduce_model(model: BaseModel) -> tuple:
    """Pickle a state model with its set of given fields sorted: the same state always pickles
    to the same bytes (a set's order may change with every round trip), so equal pickles tell
    a call that changed nothing (see ``EpisodeRuntime``'s trial memo)."""
    return _rebuild_model, (
        type(model),
        model.__dict__,
        tuple(sorted(model.__pydantic_fields_set__)),
        model.__pydantic_extra__,
        model.__pydantic_private__,
    )


def stable_pickles(module: Any) -> None:
    """Register :func:`_reduce_model` for every pydantic model class a module defines."""
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == module.__name__:
            copyreg.pickle(obj, _reduce_model)


class _SortedSet(list):
    """A set attribute as its sorted elements, in an environment's pickle (see :func:`_reduce_model`)."""


def _sorted(values: set) -> _SortedSet:
    try:
        return _SortedSet(sorted(values))
    except TypeError:  # elements of several types
        return _SortedSet(sorted(values, key=repr))


class ToolEnvironment:
    """A stateful category of built-in tools. Subclasses set ``category`` and define tools.

    ``setup`` builds the seeded initial state on ``self`` using ``self.rng`` only, so the same
    seed always gives the same world. ``state`` returns it as JSON-ready data.
    """

    category: ClassVar[str]
    description: ClassVar[str] = ""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.rng = random.Random(f"{type(self).__name__}:{seed}")
        self.setup()

    def setup(self) -> None:  # pragma: no cover - overridden
        """Build the initial state from ``self.rng``."""

    def __getstate__(self) -> dict[str, Any]:
        # set attributes sorted, so the same state pickles to the same bytes (see _reduce_model)
        return {k: (_sorted(v) if type(v) is set else v) for k, v in self.__dict__.items()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({k: (set(v) if type(v) is _SortedSet else v) for k, v in state.items()})

    def user_values(self) -> dict[str, list[Any]]:
        """Values a user could plausibly state for parameters, drawn from the current state.

        Keys are parameter names (e.g. 'city', 'amount'); a translation that must fill such a
        parameter without an earlier output picks from here. Every required parameter of the
        category that no tool's output provides and that has no enum must appear here.
        """
        return {}

    def accepts(self, tool: str, param: str, value: Any, chosen: dict[str, Any] | None = None) -> bool:
        """Whether ``tool`` would take ``value`` for ``param`` in the current state, where the
        state decides it (an open order to cancel, a user other than oneself to follow, one's
        own comment to delete), given the values ``chosen`` for its other parameters so far:
        a read-out of the tool's own rules, so that a planner picks what the world allows. True where the state does not matter or is not known here;
        the tool itself still refuses what it refuses."""
        return True

    def state(self) -> dict[str, Any]:
        """JSON-ready view of the current state (public attributes that are plain data)."""
        out = {}
        for key, value in vars(self).items():
            if key.startswith("_") or key in ("rng", "seed"):
                continue
            out[key] = _plain(value)
        return out

    # ------------------------------------------------------------------ tool discovery
    @classmethod
    def tool_specs(cls) -> dict[str, ToolSpec]:
        cache = cls.__dict__.get("_magnet_specs")
        if cache is None:
            cache = {}
            for name, member in inspect.getmembers(cls, inspect.isfunction):
                if hasattr(member, "__magnet_tool__"):
                    cache[name] = ToolSpec(cls, member)
            cls._magnet_specs = cache
        return cache

    @classmethod
    def tools(cls) -> list[Tool]:
        return [
            Tool(
                name=spec.name,
                category=cls.category,
                tool_class=spec.tool_class,
                description=spec.description,
                parameters=spec.parameters,
                response=spec.response,
                source=f"builtin:{cls.__module__}",
                executable=True,
            )
            for spec in cls.tool_specs().values()
        ]

    # ------------------------------------------------------------------ execution
    def call(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a tool on this instance's state. Never raises: failures are error outputs."""
        spec = self.tool_specs().get(name)
        if spec is None:
            return error_output("unknown_function", f"{self.category} has no function '{name}'")
        try:
            args = spec.arguments_model.model_validate(arguments or {})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors())
            return error_output("invalid_arguments", f"{name}: {problems}")
        try:
            result = spec.fn(self, **{k: getattr(args, k) for k in type(args).model_fields})
        except ToolError as exc:
            return error_output(exc.code, exc.message)
        except Exception as exc:  # a bug in an environment must not crash an episode
            return error_output("internal_error", f"{name} failed: {type(exc).__name__}: {exc}")
        return result.model_dump(mode="json")

    def lookup(self, table: dict[str, Any], key: str, code: str, message: str) -> Any:
        """``table[key]``, or the structured error ``code`` when there is no such entry."""
        if key not in table:
            raise ToolError(code, message)
        return table[key]

    def new_id(self, prefix: str, digits: int = 6) -> str:
        """A fresh identifier drawn from the seeded generator, e.g. 'BK-482913'."""
        return f"{prefix}-{self.rng.randrange(10 ** (digits - 1), 10**digits)}"


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set) else items
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return copy.deepcopy(str(value))
