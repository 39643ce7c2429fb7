"""Regenerate the one initial revision from :data:`lifecycle.schema.metadata`.

``python -m lifecycle.migrations.regenerate``: autogenerates ``versions/0001_initial.py`` anew
against an empty SQLite database (replacing the old one in one rename), and prints the tables it
creates. Run it after adding
or changing a table, and commit the result with the table.
"""

from __future__ import annotations

import os
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
    """Generate the revision in a scratch directory and move it into place in one rename, so a
    service starting meanwhile never finds the revision missing."""
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "versions"
        scratch.mkdir()
        engine = make_engine(f"sqlite:///{Path(tmp) / 'empty.db'}")
        try:
            cfg = alembic_config(engine)
            cfg.set_main_option("version_locations", str(scratch))
            command.revision(cfg, message="initial schema", autogenerate=True, rev_id=REVISION, version_path=str(scratch))
        finally:
            engine.dispose()
        generated = next(scratch.glob(f"{REVISION}_*.py"))
        # the timestamp changes every run; keeping it out makes regenerations diff only on schema changes
        text = re.sub(r"^Create Date: .*$", "Create Date: (regenerated)", generated.read_text(), flags=re.M)
        staged = FILE.with_name(f".{FILE.name}.tmp")
        staged.write_text(text)
        os.replace(staged, FILE)
    return FILE


def main() -> int:
    path = regenerate()
    tables = re.findall(r"op\.create_table\(\s*'([^']+)'", path.read_text())
    print(f"wrote {path} creating {len(tables)} tables: {', '.join(tables)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
