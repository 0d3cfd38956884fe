"""`python -m engine_app ...`: see engine_app/cli.py."""

from __future__ import annotations

import sys

from engine_app.cli import main

if __name__ == "__main__":
    sys.exit(main())
