"""The library: references, their profiles and elements, the change log.

The same tables as the embedded SQLite library (schema 4, see
:mod:`xrdid.library.store`), in PostgreSQL types.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE library_meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE reference (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name TEXT NOT NULL,
            formula TEXT,
            elements TEXT NOT NULL,
            space_group_symbol TEXT,
            space_group_number INTEGER,
            crystal_system TEXT,
            source TEXT NOT NULL,
            source_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('calculated', 'measured')),
            pattern BYTEA NOT NULL,
            embedding BYTEA NOT NULL,
            model_version TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            notes TEXT,
            content_hash TEXT,
            rir DOUBLE PRECISION,
            UNIQUE (source, source_id)
        );
        CREATE INDEX reference_by_content_hash ON reference (content_hash);
        CREATE INDEX reference_by_model_version ON reference (model_version, id);
        CREATE TABLE reference_profile (
            reference_id BIGINT PRIMARY KEY REFERENCES reference (id) ON DELETE CASCADE,
            profile BYTEA NOT NULL
        );
        CREATE TABLE reference_element (
            element TEXT NOT NULL,
            reference_id BIGINT NOT NULL REFERENCES reference (id) ON DELETE CASCADE,
            PRIMARY KEY (element, reference_id)
        );
        CREATE INDEX reference_element_by_reference ON reference_element (reference_id);
        CREATE TABLE reference_change (
            generation BIGINT NOT NULL,
            seq BIGINT GENERATED ALWAYS AS IDENTITY,
            reference_id BIGINT NOT NULL,
            op TEXT NOT NULL CHECK (op IN ('add', 'delete'))
        );
        CREATE INDEX reference_change_by_generation ON reference_change (generation, seq);
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP TABLE reference_change, reference_element, reference_profile, reference, library_meta"
    )
