"""What the forkserver of ``magnet run``'s workers imports before it forks them: the project's
definitions, the built-in environments with their tool specs built, and the libraries Kuzu
loads on its first query from a DataFrame (pandas, pyarrow). Each worker would otherwise spend
about a second on the specs in its first category run and as much in its first graph write."""

import contextlib

import pyarrow  # noqa: F401  (a DataFrame reaches Kuzu as Arrow)

import magnet_assets.definitions  # noqa: F401  (the job each worker builds)
from magnet_lib.pool.envs import builtin_environments

for _environment in builtin_environments().values():
    _environment.tools()

with contextlib.suppress(ImportError):  # installed with the training extras (datasets, trl)
    import pandas  # noqa: F401  (Kuzu imports it on a connection's first execute)

from magnet_assets.forkserver import tune_collector  # noqa: E402

tune_collector()  # the forked workers inherit it
