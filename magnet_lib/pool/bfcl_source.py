"""BFCL's executable classes as an opt-in tool source (``[bfcl] tool_source = true``; needs
bfcl-eval), the way the paper grew its pool: really executed categories whose functions and
descriptions are rewritten, so that training never shows the evaluation's names.

Each of BFCL's eight multi-turn classes (GorillaFileSystem, MessageAPI, TwitterAPI, TicketAPI,
TradingBot, TravelAPI, VehicleControlAPI, MathAPI) becomes a category ``bfcl_<class>`` backed
by a :class:`ToolEnvironment` whose instance is BFCL's class itself, its state loaded from the
``initial_config`` of one of BFCL's multi-turn scenarios involving it (chosen by the episode's
seed). Function docs come from BFCL's ``multi_turn_func_doc`` (types converted by BFCL's own
OpenAI conversion). Names are rewritten deterministically (a class prefix and verb synonyms:
``mkdir`` -> ``fs_make_dir``... see :func:`rename`) and descriptions lose BFCL's boilerplate and
class names; :func:`name_mapping` keeps new name -> ``Class.original`` for the reports (the
contamination report maps renamed calls back with it).

This is its own small module: the pool's discovery and the episode runtime look it up only
when the setting is on. The model-rewritten names of LLM mode are not implemented (offline
renaming only).
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import re
import tempfile
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from magnet_lib.models import Tool
from magnet_lib.pool.envs.base import ToolEnvironment, error_output

#: BFCL class -> (category suffix, name prefix)
CLASSES = {
    "GorillaFileSystem": ("file_system", "fs"),
    "MessageAPI": ("messages", "chat"),
    "TwitterAPI": ("posting", "social"),
    "TicketAPI": ("tickets", "support"),
    "TradingBot": ("trading", "broker"),
    "TravelAPI": ("travel_booking", "trip"),
    "VehicleControlAPI": ("vehicle", "car"),
    "MathAPI": ("math", "calc"),
}
SYNONYMS = {
    "get": "fetch", "list": "enumerate", "add": "insert", "delete": "erase", "remove": "drop",
    "search": "lookup", "send": "dispatch", "view": "show", "create": "open", "edit": "modify",
    "cancel": "revoke", "book": "reserve", "login": "sign_in", "logout": "sign_out",
    "authenticate": "verify", "mkdir": "make_dir", "rmdir": "remove_dir", "cd": "change_dir",
    "ls": "list_dir", "cp": "copy", "mv": "move", "rm": "delete_file", "cat": "read_file",
    "pwd": "current_dir", "wc": "count", "du": "disk_usage", "tail": "last_lines",
    "touch": "new_file", "grep": "match_lines", "echo": "write_text", "find": "locate",
    "post": "publish", "tweet": "update", "user": "member", "message": "note", "ticket": "case",
    "stock": "share", "order": "trade", "flight": "air_trip", "check": "inspect", "set": "configure",
    "display": "render", "estimate": "approximate", "status": "state",
}  # fmt: skip


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return [t.lower() for t in spaced.split("_") if t]


def rename(bfcl_class: str, name: str) -> str:
    """The pool's name of a BFCL function: the class prefix, then each word through the
    synonym table (deterministic; never the original name)."""
    prefix = CLASSES[bfcl_class][1]
    words = [SYNONYMS.get(t, t) for t in _tokens(name)]
    new = "_".join([prefix, *words])
    return new if new != name else f"{new}_op"


def rewrite_description(bfcl_class: str, text: str) -> str:
    """BFCL's description without its 'This tool belongs to ...' preamble and class names."""
    text = text.split("Tool description:", 1)[-1].strip()
    for cls in CLASSES:
        text = text.replace(cls, "the service")
    return text.replace("Gorilla file system", "file system").replace("Twitter", "the posting service")


def _bfcl_module(name: str) -> Any:
    """A module of bfcl-eval, imported on first use (its result folders kept out of
    site-packages, as the evaluation's loader does)."""
    os.environ.setdefault("BFCL_PROJECT_ROOT", str(Path(tempfile.gettempdir()) / "magnet-bfcl"))
    return importlib.import_module(name)


def _docs(bfcl_class: str) -> list[dict[str, Any]]:
    config = _bfcl_module("bfcl_eval.constants.executable_backend_config")
    utils = _bfcl_module("bfcl_eval.utils")
    path = utils.MULTI_TURN_FUNC_DOC_PATH / config.MULTI_TURN_FUNC_DOC_FILE_MAPPING[bfcl_class]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A BFCL (Gorilla) schema in JSON Schema terms: dict -> object, float -> number, tuple -> array."""
    out = {}
    for k, v in schema.items():
        if k == "type":
            v = {"dict": "object", "float": "number", "tuple": "array", "any": "string"}.get(v, v)
        elif isinstance(v, dict):
            v = {pk: _json_schema(pv) if isinstance(pv, dict) else pv for pk, pv in v.items()} if k == "properties" else _json_schema(v)
        out[k] = v
    return out


@cache
def scenarios(bfcl_class: str) -> list[dict[str, Any]]:
    """The ``initial_config`` of this class in every BFCL multi-turn base entry involving it."""
    found = []
    for entry in _bfcl_module("bfcl_eval.utils").load_dataset_entry("multi_turn_base"):
        if bfcl_class in entry["involved_classes"]:
            found.append(entry.get("initial_config", {}).get(bfcl_class, {}))
    return found


class BfclEnvironment(ToolEnvironment):
    """A BFCL class as a category: the instance is BFCL's own, loaded from one of its scenarios."""

    bfcl_class: ClassVar[str] = ""

    def setup(self) -> None:
        config = _bfcl_module("bfcl_eval.constants.executable_backend_config")
        module = _bfcl_module(config.CLASS_FILE_PATH_MAPPING[self.bfcl_class])
        self._instance = getattr(module, self.bfcl_class)()
        options = scenarios(self.bfcl_class)
        self._scenario = copy.deepcopy(self.rng.choice(options)) if options else {}
        if self.bfcl_class not in config.STATELESS_CLASSES:
            self._instance._load_scenario(copy.deepcopy(self._scenario), long_context=False)

    @classmethod
    def renamed(cls) -> dict[str, str]:
        return {rename(cls.bfcl_class, d["name"]): d["name"] for d in _docs(cls.bfcl_class)}

    @classmethod
    def tools(cls) -> list[Tool]:
        out = []
        for doc in _docs(cls.bfcl_class):
            out.append(
                Tool(
                    name=rename(cls.bfcl_class, doc["name"]),
                    category=cls.category,
                    tool_class=CLASSES[cls.bfcl_class][0].replace("_", " "),
                    description=rewrite_description(cls.bfcl_class, doc.get("description", "")),
                    parameters=_json_schema(doc.get("parameters", {"type": "dict", "properties": {}})),
                    response=_json_schema(doc.get("response", {})),
                    source=f"builtin:{cls.__module__}",
                    executable=True,
                )
            )
        return out

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        original = self.renamed().get(name)
        if original is None:
            return error_output("unknown_function", f"{self.category} has no function '{name}'")
        try:
            result = getattr(self._instance, original)(**(arguments or {}))
        except TypeError as exc:
            message = str(exc).replace(f"{self.bfcl_class}.{original}", name).replace(original, name)
            return error_output("invalid_arguments", f"{name}: {message}")
        except Exception as exc:  # BFCL's class failing must not crash an episode
            return error_output("internal_error", f"{name} failed: {type(exc).__name__}: {exc}")
        if isinstance(result, dict) and "error" in result and len(result) == 1:
            return error_output("failed", str(result["error"]))
        result = json.loads(json.dumps(result, default=str))
        return result if isinstance(result, dict) else {"result": result}

    def state(self) -> dict[str, Any]:
        return json.loads(json.dumps({k: v for k, v in vars(self._instance).items() if not k.startswith("_")}, default=str))

    def user_values(self) -> dict[str, list[Any]]:
        """Values found in the scenario under a key named like a parameter (``ticket_id`` also
        takes the ``id`` of a ticket record)."""
        params = {p for t in self.tools() for p in t.properties}
        values: dict[str, list[Any]] = {}

        def matches(key: str) -> list[str]:
            return [p for p in params if p == key or p.endswith(f"_{key}")]

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    if isinstance(v, (str, int, float)) and not isinstance(v, bool):
                        for p in matches(str(k)):
                            if v not in values.setdefault(p, []):
                                values[p].append(v)
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(self._scenario)
        return {k: v[:5] for k, v in values.items()}


@cache
def environments() -> dict[str, type[BfclEnvironment]]:
    """Category -> environment class for every BFCL multi-turn class."""
    out = {}
    for cls_name, (suffix, _) in CLASSES.items():
        category = f"bfcl_{suffix}"
        out[category] = type(f"Bfcl{cls_name}", (BfclEnvironment,), {"category": category, "bfcl_class": cls_name, "__module__": __name__})
    return out


def name_mapping() -> dict[str, str]:
    """Pool name -> ``Class.original`` name, for every renamed BFCL function."""
    return {new: f"{env.bfcl_class}.{old}" for env in environments().values() for new, old in env.renamed().items()}
