"""A small Parquet IO manager on Polars and UPath (dagster-polars does not support Polars 2).

Layout (DESIGN.md contract): ``<base>/<asset>/<partition>.parquet`` for partitioned assets,
``<base>/<asset>.parquet`` for unpartitioned ones. A partitioned upstream read by an
unpartitioned asset arrives as one table, the concatenation of its partitions. Local writes
go to a temporary file renamed into place, so an interrupted run never leaves half a table.
"""

from __future__ import annotations

import os
import uuid

import dagster as dg
import polars as pl
from upath import UPath


class PolarsParquetIOManager(dg.ConfigurableIOManager):
    base_dir: str

    def _root(self) -> UPath:
        return UPath(self.base_dir)

    def path_for(self, asset_key: dg.AssetKey, partition_key: str | None) -> UPath:
        name = "/".join(asset_key.path)
        if partition_key is None:
            return self._root() / f"{name}.parquet"
        return self._root() / name / f"{partition_key}.parquet"

    def _write(self, frame: pl.DataFrame, path: UPath) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.protocol in ("", "file", "local"):
            tmp = f"{path.path}.{uuid.uuid4().hex}.tmp"
            frame.write_parquet(tmp)
            os.replace(tmp, path.path)
        else:
            with path.open("wb") as fh:
                frame.write_parquet(fh)

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | None) -> None:
        if obj is None:
            return
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a polars DataFrame, got {type(obj).__name__}")
        partition = context.partition_key if context.has_asset_partitions else None
        path = self.path_for(context.asset_key, partition)
        self._write(obj, path)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        key = context.asset_key
        if not context.has_asset_partitions:
            return pl.read_parquet(str(self.path_for(key, None)))
        frames = []
        for partition in context.asset_partition_keys:
            path = self.path_for(key, partition)
            if path.exists():
                frames.append(pl.read_parquet(str(path)))
            else:
                context.log.warning(f"{key.to_user_string()} partition '{partition}' has no table at {path}; skipped")
        if not frames:
            raise FileNotFoundError(f"{key.to_user_string()}: no materialized partition among {context.asset_partition_keys}")
        return pl.concat(frames, how="diagonal_relaxed")
