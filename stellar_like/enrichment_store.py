"""The enrichment store behind ENRICHMENT_GET and ENRICHMENT_EXISTS.

Metron keeps enrichment data in an HBase table: each row is keyed by an enrichment type (such as
``malicious_domain``) and an indicator (such as ``evil.com``) and holds a map of values, in a table
and column family named by the call. An :class:`EnrichmentStore` answers the same look-ups; the
default :class:`SqliteEnrichmentStore` keeps them in one SQLite database file (Python's ``sqlite3``),
which ``maas_flatfile_loader`` fills from CSV files. Give it to the evaluation context as its
``enrichment_store`` service::

    context = Context(enrichment_store=SqliteEnrichmentStore("enrichment.db"))
    evaluate("ENRICHMENT_GET('malicious_domain', domain, 'enrichment', 't')", {...}, context)
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import orjson

from stellar_like.errors import StellarError

__all__ = ["EnrichmentStore", "EnrichmentStoreError", "SqliteEnrichmentStore"]


class EnrichmentStoreError(StellarError):
    """The enrichment store could not be read or written."""


@runtime_checkable
class EnrichmentStore(Protocol):
    """Look-ups by (table, column family, enrichment type, indicator)."""

    def get(self, table: str, column_family: str, enrichment_type: str, indicator: str) -> dict[str, Any] | None: ...

    def put_many(self, table: str, column_family: str, rows: Iterable[tuple[str, str, Mapping[str, Any]]]) -> int: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS enrichment (
    table_name TEXT NOT NULL,
    column_family TEXT NOT NULL,
    enrichment_type TEXT NOT NULL,
    indicator TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (table_name, column_family, enrichment_type, indicator)
) WITHOUT ROWID
"""


class SqliteEnrichmentStore:
    """Enrichment data in one SQLite file; safe to share between threads (one connection per thread)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        with self._connection() as connection:
            connection.execute(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            try:
                connection = sqlite3.connect(self.path, timeout=10.0)
            except sqlite3.Error as exc:
                raise EnrichmentStoreError(f"cannot open the enrichment store {self.path}: {exc}") from exc
            self._local.connection = connection
        return connection

    def get(self, table: str, column_family: str, enrichment_type: str, indicator: str) -> dict[str, Any] | None:
        try:
            row = (
                self._connection()
                .execute(
                    "SELECT value FROM enrichment WHERE table_name = ? AND column_family = ? "
                    "AND enrichment_type = ? AND indicator = ?",
                    (table, column_family, enrichment_type, indicator),
                )
                .fetchone()
            )
        except sqlite3.Error as exc:
            raise EnrichmentStoreError(f"cannot read the enrichment store {self.path}: {exc}") from exc
        if row is None:
            return None
        value = orjson.loads(row[0])
        return value if isinstance(value, dict) else {"value": value}

    def put_many(self, table: str, column_family: str, rows: Iterable[tuple[str, str, Mapping[str, Any]]]) -> int:
        """Insert or replace rows in one transaction: all of them are written, or none."""
        records = [
            (table, column_family, kind, indicator, orjson.dumps(dict(value), option=orjson.OPT_NON_STR_KEYS))
            for kind, indicator, value in rows
        ]
        connection = self._connection()
        try:
            with connection:
                connection.executemany(
                    "INSERT OR REPLACE INTO enrichment (table_name, column_family, enrichment_type, indicator, value) "
                    "VALUES (?, ?, ?, ?, ?)",
                    records,
                )
        except sqlite3.Error as exc:
            raise EnrichmentStoreError(f"cannot write the enrichment store {self.path}: {exc}") from exc
        return len(records)

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def __repr__(self) -> str:
        return f"SqliteEnrichmentStore({self.path!r})"
