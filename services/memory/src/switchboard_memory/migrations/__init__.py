r"""Memory's schema history (alembic), upgraded to head by bootstrap at every start.

A new revision, after changing tables.py (from the repository root, against a database at head):
    alembic -c services/memory/alembic.ini -x url=sqlite:///.data/memory.db \
        revision --autogenerate -m "..."
"""

from __future__ import annotations

from pathlib import Path

from switchboard_common.migrations import History

HISTORY = History(location=Path(__file__).parent, version_table="alembic_version_memory")
