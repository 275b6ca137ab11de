"""An MCP server command that exits at start (for the reject test)."""

import sys

print("notebook: cannot open the database file", file=sys.stderr)
sys.exit(3)
