"""The whole database as a stream of JSON lines, and loading such a stream into an empty database.

Backend-neutral on purpose, so a snapshot of SQLite restores into PostgreSQL
and back. Stream (format 1), one JSON value per line:

    {"snapshot": 1, "schema_revision": "0006"}
    {"table": "accounts", "columns": ["account_id", "name", "created_date"]}
    ["123456789012", "main", 1700000000.0]
    ...
    {"end": {"accounts": 1, ...}}        row counts, checked by the loader

Bytes are {"b": "<base64>"}; floats keep every bit (Python writes the shortest
repr that reads back exactly). Tables come from the database itself, parents
before children, so tables added by later migrations are included without
changes here. Leases and change events are coordination state of the running
nodes, not data: they are left out.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import MetaData, Table, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.sql import sqltypes

from strongroom.storage.store import Store, Tx

FORMAT = 1
NOT_DATA = {"alembic_version", "leases", "change_events"}
# Everything strongroom keeps belongs to an account, a secret or a key; rows elsewhere in a
# database without any (an audit chain's genesis row, which a migration seeds) are not data.
OWNERS = ("accounts", "secrets", "kms_keys")
BATCH = 500


class SnapshotError(Exception):
    """The stream is not a snapshot this release can load, or does not fit the database."""


def data_tables(conn: Connection) -> list[Table]:
    """The database's tables holding data, parents before children."""
    metadata = MetaData()
    metadata.reflect(conn)
    return [table for table in metadata.sorted_tables if table.name not in NOT_DATA]


def dump(tx: Tx, schema_revision: str | None) -> Iterator[bytes]:
    """Every row of every data table, read in `tx` (open it with Store.snapshot() for consistency)."""
    yield _line({"snapshot": FORMAT, "schema_revision": schema_revision})
    counts: dict[str, int] = {}
    for table in data_tables(tx.conn):
        yield _line({"table": table.name, "columns": [c.name for c in table.columns]})
        order = list(table.primary_key.columns) or list(table.columns)
        rows = tx.conn.execution_options(stream_results=True, yield_per=BATCH).execute(select(table).order_by(*order))
        counts[table.name] = 0
        for row in rows:
            yield _line([_encode(v) for v in row])
            counts[table.name] += 1
    yield _line({"end": counts})


def is_empty(store: Store) -> bool:
    """True when the database holds no account, secret or key (or no schema at all)."""
    with store.read() as tx:
        for table in data_tables(tx.conn):
            if table.name in OWNERS and tx.conn.execute(select(func.count()).select_from(table)).scalar_one():
                return False
    return True


def drop_everything(store: Store) -> None:
    """Drop every table, schema version included: `restore --force` starts from nothing."""
    with store.write() as tx:
        metadata = MetaData()
        metadata.reflect(tx.conn)
        metadata.drop_all(tx.conn)


def read_revision(chunks: Iterator[bytes]) -> tuple[str | None, Iterator[bytes]]:
    """The schema revision the snapshot was taken at, and its remaining lines."""
    lines = _lines(chunks)
    try:
        first = json.loads(next(lines))
    except (StopIteration, ValueError):
        raise SnapshotError("the snapshot is empty or damaged") from None
    if not isinstance(first, dict) or first.get("snapshot") != FORMAT:
        raise SnapshotError("not a snapshot this release can read")
    return first.get("schema_revision"), lines


def load(store: Store, lines: Iterator[bytes]) -> dict[str, int]:
    """Make the data tables hold exactly the snapshot's rows (after read_revision), in one
    transaction; returns rows per table. Rows migrations seeded are replaced by the snapshot's."""
    loaded: dict[str, int] = {}
    with store.write() as tx:
        ordered = data_tables(tx.conn)
        for seeded in reversed(ordered):
            tx.conn.execute(seeded.delete())
        tables = {each.name: each for each in ordered}
        table: Table | None = None
        columns: list[str] = []
        batch: list[dict[str, Any]] = []
        for raw in lines:
            item = json.loads(raw)
            if isinstance(item, list):
                if table is None:
                    raise SnapshotError("a row before its table")
                batch.append({c: _decode(table.c[c], v) for c, v in zip(columns, item)})
                if len(batch) >= BATCH:
                    _flush(tx.conn, table, batch, loaded)
                continue
            if table is not None:
                _flush(tx.conn, table, batch, loaded)
            if "end" in item:
                if item["end"] != loaded:
                    raise SnapshotError(f"row counts differ: expected {item['end']}, loaded {loaded}")
                _reset_sequences(tx.conn, list(tables.values()))
                return loaded
            table = tables.get(item["table"])
            if table is None:
                raise SnapshotError(f"the database has no table {item['table']!r}")
            columns = list(item["columns"])
            missing = [c for c in columns if c not in table.c]
            if missing:
                raise SnapshotError(f"table {table.name} has no columns {missing}")
            loaded[table.name] = 0
    raise SnapshotError("the snapshot ends early (no end marker)")


def _flush(conn: Connection, table: Table, batch: list[dict[str, Any]], loaded: dict[str, int]) -> None:
    if batch:
        conn.execute(table.insert(), batch)
        loaded[table.name] = loaded.get(table.name, 0) + len(batch)
        batch.clear()


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """PostgreSQL: serial columns continue after the highest restored id (SQLite needs nothing)."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        for column in table.primary_key.columns:
            if not isinstance(column.type, sqltypes.Integer):
                continue
            seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                               {"t": table.name, "c": column.name}).scalar()
            if seq:
                conn.execute(text(f'SELECT setval(:seq, COALESCE(MAX("{column.name}"), 1), MAX("{column.name}") '
                                  f'IS NOT NULL) FROM "{table.name}"'), {"seq": seq})


def _encode(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"b": base64.b64encode(bytes(value)).decode()}
    return value


def _decode(column: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return base64.b64decode(value["b"])
    if value is not None and isinstance(column.type, sqltypes.Boolean):
        return bool(value)  # SQLite may hand back 0/1
    return value


def _line(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from (line for line in complete if line)
    if pending:
        yield pending
