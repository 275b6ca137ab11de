"""sft_set counts the lint once: the check after it judges the saved figures when they were
counted on the very table it checks, and counts again otherwise."""

import json

import polars as pl

from magnet_assets.translation import _save_lint, _saved_lint
from magnet_assets.versions import frame_version
from magnet_lib.lint.report import lint_tables, rejudged
from magnet_lib.settings import LintSettings
from tests.test_lint import TOOLS, _weather_item


def _frame(wind: float) -> pl.DataFrame:
    item = _weather_item(wind)
    return pl.DataFrame(
        [{"traj_id": "a", "kind": "multi_turn", "split": "train", "messages": json.dumps(item.messages), "tools": json.dumps(TOOLS)}]
    )


def test_saved_figures_judged_by_new_thresholds_equal_a_new_count():
    frame = _frame(21.5)  # a wind speed taken from the temperature: other_quantity
    strict = lint_tables(frame)
    assert "other_quantity" in strict.failed
    lenient = LintSettings(max={"other_quantity": 1.0}, min={}, min_mean={}, blocking=["other_quantity"])
    again, counted = rejudged(strict, lenient), lint_tables(frame, thresholds=lenient)
    assert again.figures == counted.figures and again.examples == counted.examples
    assert again.failed == counted.failed and "other_quantity" not in again.failed
    assert again.blocking == counted.blocking == ["other_quantity"]


def test_saved_lint_is_used_only_for_the_table_it_measured(tmp_path):
    (tmp_path / "reports").mkdir()
    measured = _frame(21.5)
    version = frame_version(measured)
    _save_lint(tmp_path, version, lint_tables(measured))
    saved = _saved_lint(tmp_path, version.value)
    assert saved is not None and saved.figures["other_quantity"]["count"] == 1
    assert _saved_lint(tmp_path, frame_version(_frame(14.2)).value) is None  # another table: count again
    assert _saved_lint(tmp_path, None) is None  # nothing stored: count
    (tmp_path / "reports" / "sft_set_lint.json").write_text("{not json")
    assert _saved_lint(tmp_path, version.value) is None  # unreadable: count again
