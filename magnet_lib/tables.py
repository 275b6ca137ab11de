"""Rows <-> Polars tables.

Convention for every table of the project: scalar fields and lists of strings are native
Polars columns; every other nested value (schemas, turns, messages, tool specs, states) is a
JSON string column. ``to_frame`` and ``from_frame`` apply it from the model's annotations, so
an empty table still has the right columns and types.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterable
from typing import Any, Literal, TypeVar

import polars as pl
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_SCALARS: dict[type, pl.DataType] = {
    str: pl.String(),
    int: pl.Int64(),
    float: pl.Float64(),
    bool: pl.Boolean(),
}


def _column_type(annotation: Any) -> pl.DataType | None:
    """The native Polars type of a field, or None when the field is stored as JSON."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _column_type(args[0]) if len(args) == 1 else None
    if origin is Literal:
        values = typing.get_args(annotation)
        return _SCALARS.get(type(values[0]))
    if origin is list and typing.get_args(annotation) == (str,):
        return pl.List(pl.String())
    if isinstance(annotation, type):
        return _SCALARS.get(annotation)
    return None


def schema_of(model: type[BaseModel]) -> dict[str, pl.DataType]:
    """Polars schema of a model's table."""
    return {name: _column_type(f.annotation) or pl.String() for name, f in model.model_fields.items()}


def _json_fields(model: type[BaseModel]) -> list[str]:
    return [name for name, f in model.model_fields.items() if _column_type(f.annotation) is None]


def to_frame(rows: Iterable[BaseModel], model: type[BaseModel]) -> pl.DataFrame:
    """Build the table of ``model`` from rows (nested values become JSON strings)."""
    json_fields = _json_fields(model)
    records = []
    for row in rows:
        record = row.model_dump(mode="json")
        for name in json_fields:
            record[name] = json.dumps(record[name], ensure_ascii=False, sort_keys=True)
        records.append(record)
    return pl.DataFrame(records, schema=schema_of(model), orient="row" if not records else None)


def from_frame(frame: pl.DataFrame, model: type[M]) -> list[M]:
    """Rows of ``model`` from its table (JSON columns decoded, unknown columns ignored)."""
    json_fields = set(_json_fields(model))
    names = [n for n in model.model_fields if n in frame.columns]
    out: list[M] = []
    for record in frame.select(names).iter_rows(named=True):
        for name in json_fields & record.keys():
            if isinstance(record[name], str):
                record[name] = json.loads(record[name])
        out.append(model.model_validate(record))
    return out
