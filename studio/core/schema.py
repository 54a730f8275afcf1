"""The project database schema and its numbered migrations.

Each migration moves the schema from version N-1 to N inside one transaction. A database
whose version is newer than `SCHEMA_VERSION` was written by a newer application and is
refused (see `Project.open`).
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 3

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    channels INTEGER NOT NULL DEFAULT 3,
    sha256 TEXT NOT NULL UNIQUE,
    split TEXT NOT NULL DEFAULT 'none' CHECK (split IN ('train', 'val', 'test', 'none')),
    status TEXT NOT NULL DEFAULT 'new'
        CHECK (status IN ('new', 'in_progress', 'done', 'review')),
    added_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX images_split ON images(split);
CREATE INDEX images_status ON images(status);
CREATE TABLE classes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    color TEXT NOT NULL,
    hotkey INTEGER UNIQUE CHECK (hotkey IS NULL OR hotkey BETWEEN 0 AND 9),
    position INTEGER NOT NULL
);
CREATE TABLE annotations (
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    class_id INTEGER NOT NULL REFERENCES classes(id),
    kind TEXT NOT NULL CHECK (kind IN ('tag', 'box', 'polygon', 'mask')),
    geometry TEXT,
    bbox_x REAL NOT NULL DEFAULT 0, bbox_y REAL NOT NULL DEFAULT 0,
    bbox_w REAL NOT NULL DEFAULT 0, bbox_h REAL NOT NULL DEFAULT 0,
    area REAL NOT NULL DEFAULT 0,
    source TEXT NOT NULL DEFAULT 'manual',
    score REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX annotations_image ON annotations(image_id);
CREATE INDEX annotations_class ON annotations(class_id);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    task TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'created',
    device TEXT,
    history TEXT NOT NULL DEFAULT '[]',
    best_metrics TEXT NOT NULL DEFAULT '{}',
    checkpoints TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    started_at REAL NOT NULL,
    ended_at REAL,
    duration_s REAL
);
"""

# 2: the process that runs a run (pid, host), so that a run whose process died can be told
# from one still running
_V2 = """
ALTER TABLE runs ADD COLUMN pid INTEGER;
ALTER TABLE runs ADD COLUMN host TEXT;
"""

# 3: per-object attributes (JSON, e.g. VOC's difficult / truncated), visibility and
# lock; a note per image.
_V3 = """
ALTER TABLE annotations ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
ALTER TABLE annotations ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1));
ALTER TABLE annotations ADD COLUMN locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1));
ALTER TABLE images ADD COLUMN note TEXT NOT NULL DEFAULT ''
"""

# Migration N takes the schema from version N-1 to N. Version 0 is an empty database.
MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2, 3: _V3}


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply every migration above the database's version up to `target`; returns it."""
    version = user_version(conn)
    for number in range(version + 1, target + 1):
        script = MIGRATIONS[number]
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return user_version(conn)
