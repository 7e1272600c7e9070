"""Jobs, their status history and idempotency keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 22:21:22.075878
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("service_slug", sa.String(length=100), nullable=False),
        sa.Column("service_type", sa.String(length=20), nullable=False),
        sa.Column("panel_id", sa.Uuid(), nullable=False),
        sa.Column("panel_slug", sa.String(length=200), nullable=False),
        sa.Column("panel_remote_id", sa.String(length=500), nullable=False),
        sa.Column("build", sa.String(length=10), nullable=False),
        sa.Column(
            "phasing",
            sa.Enum("eagle", "beagle", "no_phasing", name="phasing", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("population", sa.String(length=100), nullable=True),
        sa.Column("r2_filter", sa.Float(), nullable=True),
        sa.Column(
            "mode",
            sa.Enum("imputation", "qc_only", name="jobmode", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column(
            "tags",
            postgresql.ARRAY(sa.String(length=100)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("input_file_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("inputs", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "submitting",
                "queued",
                "running",
                "cancelling",
                "completed",
                "failed",
                "cancelled",
                name="jobstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("remote_id", sa.String(length=500), nullable=True),
        sa.Column("remote_state", sa.String(length=100), nullable=True),
        sa.Column("progress", sa.Float(), nullable=True),
        sa.Column("queue_position", sa.Integer(), nullable=True),
        sa.Column("remote_messages", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("paused_note", sa.Text(), nullable=True),
        sa.Column("next_action_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("poll_interval_seconds", sa.Float(), nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submit_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("poll_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cancel_sent", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("results_ready", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("collected", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("result_notes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "result_file_ids",
            postgresql.ARRAY(sa.Uuid()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("result_password_encrypted", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("batch_id", sa.Uuid(), nullable=True),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("template_id", sa.Uuid(), nullable=True),
        sa.Column("retry_of_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["jobs.id"], name=op.f("fk_jobs_parent_id_jobs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["retry_of_id"], ["jobs.id"], name=op.f("fk_jobs_retry_of_id_jobs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_batch_id"), "jobs", ["batch_id"], unique=False)
    op.create_index(
        "ix_jobs_due",
        "jobs",
        ["next_action_at"],
        unique=False,
        postgresql_where=sa.text(
            "status IN ('pending','submitting','queued','running','cancelling')"
        ),
    )
    op.create_index("ix_jobs_owner_created", "jobs", ["owner_id", "created_at", "id"], unique=False)
    op.create_index(op.f("ix_jobs_owner_id"), "jobs", ["owner_id"], unique=False)
    op.create_index(op.f("ix_jobs_service_id"), "jobs", ["service_id"], unique=False)
    op.create_index(op.f("ix_jobs_service_slug"), "jobs", ["service_slug"], unique=False)
    op.create_index(op.f("ix_jobs_status"), "jobs", ["status"], unique=False)
    op.create_table(
        "idempotency_keys",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_idempotency_keys_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("owner_id", "key", name=op.f("uq_idempotency_keys_owner_id_key")),
    )
    op.create_table(
        "job_status_history",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("remote_state", sa.String(length=100), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_job_status_history_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_status_history")),
    )
    op.create_index(
        op.f("ix_job_status_history_job_id"), "job_status_history", ["job_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_job_status_history_job_id"), table_name="job_status_history")
    op.drop_table("job_status_history")
    op.drop_table("idempotency_keys")
    op.drop_index(op.f("ix_jobs_status"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_service_slug"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_service_id"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_owner_id"), table_name="jobs")
    op.drop_index("ix_jobs_owner_created", table_name="jobs")
    op.drop_index(
        "ix_jobs_due",
        table_name="jobs",
        postgresql_where=sa.text(
            "status IN ('pending','submitting','queued','running','cancelling')"
        ),
    )
    op.drop_index(op.f("ix_jobs_batch_id"), table_name="jobs")
    op.drop_table("jobs")
