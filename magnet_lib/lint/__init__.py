"""The data lint: defects of tool-use training data measured from the data itself.

    from magnet_lib.lint import lint, load
    report = lint(load(["export/dataset"]))
    print(report.to_markdown())

Usable on any dataset in OpenAI chat form (Magnet's tables and exports, or data made by
other tools); :mod:`magnet_lib.lint.rules` holds the rules, :mod:`.report` the thresholds.
"""

from magnet_lib.lint.data import Dataset, Item, Pair, from_records, load
from magnet_lib.lint.report import LintReport, LintThresholds, lint

__all__ = ["Dataset", "Item", "LintReport", "LintThresholds", "Pair", "from_records", "lint", "load"]
