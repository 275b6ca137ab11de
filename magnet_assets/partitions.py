"""Per-category partitions: one partition key per tool category (built-in or user folder)."""

import dagster as dg

category_partitions = dg.DynamicPartitionsDefinition(name="category")
