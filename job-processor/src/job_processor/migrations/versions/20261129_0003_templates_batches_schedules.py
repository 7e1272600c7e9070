"""Job templates, federated batches, scheduled jobs and their runs; jobs point at their
template and batch.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 22:40:50.286831
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_batches",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("input_file_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column(
            "tags",
            postgresql.ARRAY(sa.String(length=100)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_batches")),
        sa.UniqueConstraint(
            "owner_id", "idempotency_key", name=op.f("uq_job_batches_owner_id_idempotency_key")
        ),
    )
    op.create_index(
        "ix_job_batches_owner_created",
        "job_batches",
        ["owner_id", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "job_templates",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("shared", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("panel", sa.String(length=200), nullable=False),
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
        sa.Column("usage_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_templates")),
        sa.UniqueConstraint("owner_id", "name", name=op.f("uq_job_templates_owner_id_name")),
    )
    op.create_index(op.f("ix_job_templates_owner_id"), "job_templates", ["owner_id"], unique=False)
    op.create_index(
        "ix_job_templates_shared",
        "job_templates",
        ["shared"],
        unique=False,
        postgresql_where=sa.text("shared"),
    )
    op.create_table(
        "scheduled_jobs",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("input_file_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cron", sa.String(length=200), nullable=True),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_job_id", sa.Uuid(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("run_count", sa.Integer(), server_default="0", nullable=False),
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
            ["template_id"],
            ["job_templates.id"],
            name=op.f("fk_scheduled_jobs_template_id_job_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_jobs")),
    )
    op.create_index(
        "ix_scheduled_jobs_due",
        "scheduled_jobs",
        ["next_run_at"],
        unique=False,
        postgresql_where=sa.text("enabled"),
    )
    op.create_index(
        op.f("ix_scheduled_jobs_owner_id"), "scheduled_jobs", ["owner_id"], unique=False
    )
    op.create_index(
        op.f("ix_scheduled_jobs_template_id"), "scheduled_jobs", ["template_id"], unique=False
    )
    op.create_table(
        "scheduled_job_runs",
        sa.Column("schedule_id", sa.Uuid(), nullable=False),
        sa.Column("occurrence_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["scheduled_jobs.id"],
            name=op.f("fk_scheduled_job_runs_schedule_id_scheduled_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_job_runs")),
        sa.UniqueConstraint(
            "schedule_id",
            "occurrence_at",
            name=op.f("uq_scheduled_job_runs_schedule_id_occurrence_at"),
        ),
    )
    op.create_foreign_key(
        op.f("fk_jobs_template_id_job_templates"),
        "jobs",
        "job_templates",
        ["template_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_foreign_key(
        op.f("fk_jobs_batch_id_job_batches"),
        "jobs",
        "job_batches",
        ["batch_id"],
        ["id"],
        ondelete="CASCADE",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_jobs_batch_id_job_batches"), "jobs", type_="foreignkey")
    op.drop_constraint(op.f("fk_jobs_template_id_job_templates"), "jobs", type_="foreignkey")
    op.drop_table("scheduled_job_runs")
    op.drop_index(op.f("ix_scheduled_jobs_template_id"), table_name="scheduled_jobs")
    op.drop_index(op.f("ix_scheduled_jobs_owner_id"), table_name="scheduled_jobs")
    op.drop_index(
        "ix_scheduled_jobs_due", table_name="scheduled_jobs", postgresql_where=sa.text("enabled")
    )
    op.drop_table("scheduled_jobs")
    op.drop_index(
        "ix_job_templates_shared", table_name="job_templates", postgresql_where=sa.text("shared")
    )
    op.drop_index(op.f("ix_job_templates_owner_id"), table_name="job_templates")
    op.drop_table("job_templates")
    op.drop_index("ix_job_batches_owner_created", table_name="job_batches")
    op.drop_table("job_batches")
