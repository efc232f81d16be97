"""`python -m talentwatch` and the `talentwatch` console script.

Kept light on purpose: parse workers (crawler/parsepool.py) start from a fork server and import the program's main
module before any work; the command line itself, with SQLAlchemy, Alembic and rich, is imported only to run it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from talentwatch.cli import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
