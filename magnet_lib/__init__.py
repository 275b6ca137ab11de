"""Magnet, the method as a plain library (no Dagster import anywhere in it)."""

import os

# LiteLLM fetches its model price map from the network at import unless told otherwise;
# runs must work offline, so use the copy shipped with the package unless the user chose.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
