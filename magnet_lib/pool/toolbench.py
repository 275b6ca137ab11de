"""ToolBench / StableToolBench tool files (RapidAPI JSON) as spec-only tools.

One file describes one RapidAPI tool: ``tool_name``, ``tool_description`` and ``api_list``,
whose entries have ``name``, ``description``, ``required_parameters`` and
``optional_parameters`` (each ``{"name", "type", "description", "default"}``) and, in
StableToolBench, a response ``schema``. Every API becomes one function named as ToolBench
names it (``<api>_for_<tool>``, standardised, at most 64 characters); the tool's name is its
``tool_class``. Types follow ToolBench's mapping (NUMBER, BOOLEAN, ARRAY and OBJECT keep their
meaning, everything else - STRING, ENUM, DATE, GEOPOINT ... - is a string); a ``default``
is an example value in these files, so it becomes ``examples``.

:func:`toolbench_entries` turns such entries into the OpenAI-style entries the pool validates
(so the same validation and reject rows apply); other entries pass through unchanged.
"""

from __future__ import annotations

import re
from typing import Any

TYPES = {"NUMBER": "number", "INTEGER": "integer", "BOOLEAN": "boolean", "ARRAY": "array", "OBJECT": "object"}
_RESERVED = {"from", "class", "return", "false", "true", "id", "and"}


def is_toolbench(entry: Any) -> bool:
    return isinstance(entry, dict) and "api_list" in entry


def standardize(text: str) -> str:
    """ToolBench's name standardisation: non-alphanumerics to '_', lower case, no leading
    digit."""
    out = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", text)).lower().strip("_")
    return f"get_{out}" if out and out[0].isdigit() else out


def _parameter(param: Any, where: str, tool: str) -> tuple[str | None, dict[str, Any] | None, list[tuple[str, str, str]]]:
    if not isinstance(param, dict) or not isinstance(param.get("name"), str) or not param["name"].strip():
        return None, None, [(tool, where, "expected an object with a 'name'")]
    kind = str(param.get("type") or "STRING").upper().split()[0]
    schema: dict[str, Any] = {"type": TYPES.get(kind, "string")}
    if isinstance(param.get("description"), str) and param["description"].strip():
        schema["description"] = param["description"].strip()
    default = param.get("default")
    if default not in (None, ""):
        schema["examples"] = [default]
    return param["name"], schema, []


def convert_tool(entry: dict[str, Any], index: int) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    """The functions of one RapidAPI tool entry, and problems as (tool, field, message)."""
    tool_name = entry.get("tool_name") or entry.get("name") or entry.get("title")
    label = tool_name if isinstance(tool_name, str) and tool_name.strip() else f"<index {index}>"
    if label.startswith("<"):
        return [], [(label, "tool_name", "is missing or empty")]
    apis = entry.get("api_list")
    if not isinstance(apis, list):
        return [], [(label, "api_list", f"expected a list of APIs, got {type(apis).__name__}")]
    standard_tool = standardize(entry.get("standardized_name") or tool_name)
    tool_description = str(entry.get("tool_description") or "").strip()
    functions: list[dict[str, Any]] = []
    problems: list[tuple[str, str, str]] = []
    for k, api in enumerate(apis):
        if not isinstance(api, dict) or not isinstance(api.get("name"), str) or not api["name"].strip():
            problems.append((label, f"api_list.{k}.name", "is missing or empty"))
            continue
        api_name = standardize(api["name"])
        api_name = f"is_{api_name}" if api_name in _RESERVED else api_name
        name = f"{api_name}_for_{standard_tool}"[-64:].lstrip("_")
        description = str(api.get("description") or "").strip() or f'"{api["name"]}" of the {tool_name} API. {tool_description}'.strip()
        properties: dict[str, Any] = {}
        required: list[str] = []
        bad = False
        for group in ("required_parameters", "optional_parameters"):
            params = api.get(group) or []
            if not isinstance(params, list):
                problems.append((name, f"api_list.{k}.{group}", f"expected a list, got {type(params).__name__}"))
                bad = True
                continue
            for j, param in enumerate(params):
                pname, schema, issues = _parameter(param, f"api_list.{k}.{group}.{j}", name)
                problems.extend(issues)
                if pname is None:
                    bad = True
                elif pname in properties:
                    problems.append((name, f"api_list.{k}.{group}.{j}", f"duplicate parameter '{pname}'"))
                    bad = True
                else:
                    properties[pname] = schema
                    if group == "required_parameters":
                        required.append(pname)
        if bad:
            continue
        function = {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
            "tool_class": tool_name,
        }
        schema = api.get("schema")
        if isinstance(schema, dict) and schema.get("type"):
            function["response"] = schema
        functions.append(function)
    return functions, problems


def toolbench_entries(entries: list[Any]) -> tuple[list[Any], list[tuple[str, str, str]]]:
    """Entries with every ToolBench tool expanded into its functions, and the problems."""
    if not any(is_toolbench(e) for e in entries):
        return entries, []
    out: list[Any] = []
    problems: list[tuple[str, str, str]] = []
    for index, entry in enumerate(entries):
        if is_toolbench(entry):
            functions, issues = convert_tool(entry, index)
            out.extend(functions)
            problems.extend(issues)
        else:
            out.append(entry)
    return out, problems
