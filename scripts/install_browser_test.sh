#!/usr/bin/env bash
# What the browser test of the Dagster UI (tests/test_ui_browser.py, marked slow) needs:
#   - Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver),
#   - Playwright for Python (the `browser` extra), which the test points at /usr/bin/chromium:
#     Playwright's own browser download (`playwright install`) is not used.
# Run as root or with sudo, from anywhere:
#
#   scripts/install_browser_test.sh
#   python -m pytest -m slow tests/test_ui_browser.py -s
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  $SUDO apt-get update
  $SUDO apt-get install -y chromium chromium-driver
fi
pip install -e ".[browser]"
chromium --version
python -c "import playwright.sync_api; from importlib.metadata import version; print('playwright', version('playwright'), 'ready')"
