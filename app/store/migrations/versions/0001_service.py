"""The service store: jobs and their scans, idempotency keys, the audit log,
webhook deliveries. The same tables as :mod:`app.store.sqlite` (schema 1),
in PostgreSQL types.

Revision ID: s0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "s0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE job (
            id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            started_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            expires_at DOUBLE PRECISION,
            options JSONB NOT NULL,
            sample_id TEXT,
            callback_url TEXT,
            key_id TEXT,
            request_id TEXT
        );
        CREATE INDEX job_expiry ON job (expires_at) WHERE expires_at IS NOT NULL;
        CREATE INDEX job_order ON job (created_at, id) WHERE status IN ('queued', 'running');
        CREATE TABLE job_file (
            job_id TEXT NOT NULL REFERENCES job (id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            filename TEXT NOT NULL,
            status TEXT NOT NULL,
            data BYTEA,
            attempts INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT,
            lease_expires DOUBLE PRECISION,
            result JSONB,
            error JSONB,
            PRIMARY KEY (job_id, idx)
        );
        CREATE INDEX job_file_todo ON job_file (job_id, idx)
            WHERE status IN ('queued', 'running');
        CREATE INDEX job_file_owner ON job_file (lease_owner) WHERE lease_owner IS NOT NULL;
        CREATE TABLE idempotency (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            state TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            locked_until DOUBLE PRECISION,
            status INTEGER,
            headers JSONB,
            body BYTEA,
            PRIMARY KEY (scope, key)
        );
        CREATE INDEX idempotency_expiry ON idempotency (expires_at);
        CREATE TABLE audit (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at DOUBLE PRECISION NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            key_id TEXT,
            request_id TEXT,
            client TEXT,
            details JSONB NOT NULL
        );
        CREATE TABLE delivery (
            id TEXT PRIMARY KEY,
            job_id TEXT NOT NULL REFERENCES job (id) ON DELETE CASCADE,
            event_type TEXT NOT NULL,
            url TEXT NOT NULL,
            payload BYTEA NOT NULL,
            status TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            next_attempt_at DOUBLE PRECISION,
            lease_owner TEXT,
            lease_expires DOUBLE PRECISION
        );
        CREATE INDEX delivery_due ON delivery (status, next_attempt_at);
        CREATE INDEX delivery_job ON delivery (job_id);
        CREATE TABLE delivery_attempt (
            delivery_id TEXT NOT NULL REFERENCES delivery (id) ON DELETE CASCADE,
            n INTEGER NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            status_code INTEGER,
            error TEXT,
            duration_ms DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (delivery_id, n)
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE delivery_attempt, delivery, audit, idempotency, job_file, job")
