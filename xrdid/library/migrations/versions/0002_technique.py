"""Techniques: each reference's (XRD or Raman), as the SQLite library's
schema 4 (:mod:`xrdid.library.store`). A library that existed before is an
XRD one; a new library records its technique when it is created
(:meth:`xrdid.library.postgres.PostgresStore.init_schema`).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE reference ADD COLUMN technique TEXT NOT NULL DEFAULT 'xrd'
            CHECK (technique IN ('xrd', 'raman'));
        INSERT INTO library_meta (key, value)
            SELECT 'technique', 'xrd' WHERE EXISTS (SELECT 1 FROM library_meta)
            ON CONFLICT (key) DO NOTHING;
        """
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE reference DROP COLUMN technique; "
        "DELETE FROM library_meta WHERE key = 'technique'"
    )
