"""Do two Magnet homes hold the same training data?

Compares the rows of ``sft_set`` and ``mdpo_pairs`` (and, with ``--all``, every per-category
table) of two homes made by ``magnet run`` with the same settings, e.g. before and after a
refactor. Rows are compared as sets of JSON-serialised rows, order-independent; the report
names the tables that differ and how many rows each side has that the other lacks.

    python benchmarks/same_data.py HOME_A HOME_B [--all] [--json OUT]

Exit status 0 when every compared table is identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import polars as pl

MAIN_TABLES = ("sft_set", "mdpo_pairs")


def table_files(home: Path, every: bool) -> dict[str, Path]:
    storage = home / "storage"
    files = {name: storage / f"{name}.parquet" for name in MAIN_TABLES}
    if every:
        for path in sorted(storage.glob("*/*.parquet")):
            files[f"{path.parent.name}/{path.stem}"] = path
    return files


def rows(path: Path) -> list[str]:
    frame = pl.read_parquet(path)
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in frame.iter_rows(named=True))


def compare(a: Path, b: Path, every: bool) -> dict[str, dict[str, int | bool]]:
    left, right = table_files(a, every), table_files(b, every)
    report = {}
    for name in sorted(set(left) | set(right)):
        la = rows(left[name]) if name in left and left[name].exists() else []
        lb = rows(right[name]) if name in right and right[name].exists() else []
        sa, sb = set(la), set(lb)
        report[name] = {"rows_a": len(la), "rows_b": len(lb), "only_a": len(sa - sb), "only_b": len(sb - sa), "same": la == lb}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home_a", type=Path)
    parser.add_argument("home_b", type=Path)
    parser.add_argument("--all", action="store_true", help="also every per-category table")
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--note", default="", help="how the two homes were made (kept in the JSON)")
    args = parser.parse_args()
    report = compare(args.home_a, args.home_b, args.all)
    for name, r in report.items():
        print(
            f"{'same' if r['same'] else 'DIFFERENT':9} {name}: {r['rows_a']} / {r['rows_b']} rows, only in A {r['only_a']}, only in B {r['only_b']}"
        )
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "note": args.note, "tables": report}, indent=2))
    sys.exit(0 if all(r["same"] for r in report.values()) else 1)


if __name__ == "__main__":
    main()
