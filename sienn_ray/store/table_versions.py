"""A version per table, bumped by SQLite triggers in the transaction of every write to that table.

The read memo (``read_memo.py``) learns from the WAL-index header *that* something was committed, not
*what*: alone it drops every remembered read at each commit, so a status poll is read and rendered again
whenever any job logs a loss point, an event or an audit entry (``bench/api_load.py``: ~35 commits/s
while one short-epoch job trained and uploads ran, a quarter of them to the jobs table). With these
versions it drops only the reads of tables that changed. Triggers, not the writer's code, so no write
path can forget its bump, and the bump commits (or rolls back) with the write itself. SQLite has no
per-table change counter of its own (``PRAGMA data_version`` is per database), hence this file.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa

TABLE = "table_versions"


def install(conn: sa.Connection, tables: list[str]) -> None:
    """Create what is missing of the versions table, its rows and three triggers per table (SQLite only).
    Writes nothing when all is there: a registry must still start on a read-only database file."""
    present = {name for (name,) in conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')").all()}
    if TABLE not in present:
        conn.exec_driver_sql(f"CREATE TABLE {TABLE} (name TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    counted = {name for (name,) in conn.exec_driver_sql(f"SELECT name FROM {TABLE}").all()}
    for name in tables:
        if name not in counted:
            conn.exec_driver_sql(f"INSERT INTO {TABLE} (name, version) VALUES (?, 0)", (name,))
        for op in ("INSERT", "UPDATE", "DELETE"):
            trigger = f"{name}_{op.lower()}_version"
            if trigger not in present:
                conn.exec_driver_sql(f"CREATE TRIGGER {trigger} AFTER {op} ON {name} "
                                     f"BEGIN UPDATE {TABLE} SET version = version + 1 WHERE name = '{name}'; END")


def read(conn: sqlite3.Connection) -> dict[str, int] | None:
    """Each table's version now; None where the database has none yet (written before they existed)."""
    try:
        return dict(conn.execute(f"SELECT name, version FROM {TABLE}").fetchall())
    except sqlite3.Error:  # no such table (its writer has not migrated it yet), or unreadable: drop all
        return None
