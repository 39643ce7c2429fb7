"""Regenerate the one initial revision from :data:`lifecycle.schema.metadata`.

``python -m lifecycle.migrations.regenerate``: removes ``versions/0001_initial.py``, autogenerates
it anew against an empty SQLite database, and prints the tables it creates. Run it after adding
or changing a table, and commit the result with the table.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from alembic import command

from lifecycle.db import make_engine
from lifecycle.migrations import HERE, alembic_config

REVISION = "0001"
FILE = HERE / "versions" / f"{REVISION}_initial.py"


def regenerate() -> Path:
    FILE.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'empty.db'}")
        try:
            cfg = alembic_config(engine)
            command.revision(cfg, message="initial schema", autogenerate=True, rev_id=REVISION)
        finally:
            engine.dispose()
    generated = next((HERE / "versions").glob(f"{REVISION}_*.py"))
    if generated != FILE:
        generated.rename(FILE)
    # the timestamp changes every run; keeping it out makes regenerations diff only on schema changes
    text = re.sub(r"^Create Date: .*$", "Create Date: (regenerated)", FILE.read_text(), flags=re.M)
    FILE.write_text(text)
    return FILE


def main() -> int:
    path = regenerate()
    tables = re.findall(r"op\.create_table\(\s*'([^']+)'", path.read_text())
    print(f"wrote {path} creating {len(tables)} tables: {', '.join(tables)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
