"""What the forkserver of ``magnet run``'s workers imports before it forks them: the project's
definitions, and the built-in environments with their tool specs built (each worker would
otherwise spend about a second on them in its first category run)."""

import magnet_assets.definitions  # noqa: F401  (the job each worker builds)
from magnet_lib.pool.envs import builtin_environments

for _environment in builtin_environments().values():
    _environment.tools()
