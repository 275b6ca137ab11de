"""Metadata helpers every asset uses: row counts, a preview, LLM accounting, settings used."""

from __future__ import annotations

import json
from typing import Any

import dagster as dg
import polars as pl

from magnet_lib.llm.runner import TaskRunner


def table_metadata(frame: pl.DataFrame, preview_columns: list[str] | None = None, rows: int = 5) -> dict[str, Any]:
    """Row count and a markdown preview of the first rows (long cells shortened)."""
    cols = [c for c in (preview_columns or frame.columns[:6]) if c in frame.columns]
    head = frame.select(cols).head(rows)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for record in head.iter_rows():
        cells = [str(v).replace("|", "\\|").replace("\n", " ")[:80] for v in record]
        lines.append("| " + " | ".join(cells) + " |")
    return {"dagster/row_count": frame.height, "preview": dg.MetadataValue.md("\n".join(lines))}


def llm_metadata(runner: TaskRunner) -> dict[str, Any]:
    """Calls, cache hits, retries, rejects, tokens and cost per task (never the API key)."""
    stats = runner.metadata()
    if not stats:
        return {}
    total = {
        key: sum(s.get(key, 0) for s in stats.values())
        for key in ("items", "calls", "cache_hits", "retries", "rejects", "prompt_tokens", "completion_tokens", "cost_usd")
    }
    # failed requests (connection errors, timeouts, 5xx...), whatever their kind
    total["failures"] = sum(sum((s.get("transport_errors") or {}).values()) for s in stats.values())
    out: dict[str, Any] = {f"llm/{k}": v for k, v in total.items()}
    out["llm/model"] = runner.settings.model or "offline"
    out["llm/per_task"] = json_metadata(stats)
    return out


def json_metadata(value: Any) -> dg.MetadataValue:
    """Any JSON-like value as Dagster JSON metadata (non-JSON leaves become strings)."""
    return dg.MetadataValue.json(json.loads(json.dumps(value, default=str)))


def counts_metadata(name: str, counts: dict[str, int]) -> dict[str, Any]:
    return {name: dg.MetadataValue.json({str(k): int(v) for k, v in counts.items()})}
