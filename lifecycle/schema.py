"""The complete table metadata of the lifecycle service: importing this module imports every
module that declares tables on :class:`lifecycle.db.Base`, so ``Base.metadata`` holds them all.

Alembic (``lifecycle/migrations``) and the tests read :data:`metadata` from here. After adding a
table module, add its import below and run ``python -m lifecycle.migrations.regenerate``.
"""

from __future__ import annotations

from lifecycle import audit, auth, datasets, incidents, inference, jobs, markups, models  # noqa: F401  (tables)
from lifecycle.db import Base

metadata = Base.metadata
