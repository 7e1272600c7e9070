"""protocol fidelity: WES capabilities, workflow profiles and API roots; panel versions

- services: ``cloudgene_app_version``, ``api_url``, ``capabilities``, ``workflow_profile``;
- panels: ``version``, ``location``, ``chromosomes``;
- data: the pseudo-panels an older sync made from WES workflow types (``WDL:1.0``...) are removed
  (they were languages, not panels), and Cloudgene panels keyed ``apps@<id>@<version>`` get their
  version recorded and a slug without it (unless that slug is taken), so a new version updates
  the same row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 19:10:00
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WORKFLOW_TYPE_PANEL = r"^(CWL|WDL|NEXTFLOW|NFL|SMK|SNAKEMAKE|GALAXY):"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")[:100] or "panel"


def upgrade() -> None:
    op.add_column(
        "imputation_services", sa.Column("cloudgene_app_version", sa.String(100), nullable=True)
    )
    op.add_column("imputation_services", sa.Column("api_url", sa.String(2048), nullable=True))
    op.add_column(
        "imputation_services",
        sa.Column(
            "capabilities",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
    )
    op.add_column(
        "imputation_services",
        sa.Column("workflow_profile", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column("reference_panels", sa.Column("version", sa.String(100), nullable=True))
    op.add_column("reference_panels", sa.Column("location", sa.String(2048), nullable=True))
    op.add_column(
        "reference_panels",
        sa.Column(
            "chromosomes",
            postgresql.ARRAY(sa.String(10)),
            nullable=False,
            server_default=sa.text("'{}'::varchar[]"),
        ),
    )
    # The defaults only filled the existing rows; the application sets these columns itself.
    op.alter_column("imputation_services", "capabilities", server_default=None)
    op.alter_column("reference_panels", "chromosomes", server_default=None)
    connection = op.get_bind()
    connection.execute(
        sa.text(
            "DELETE FROM reference_panels p USING imputation_services s "
            "WHERE p.service_id = s.id AND s.kind IN ('ga4gh_wes', 'dnastack') "
            "AND p.remote_id ~* :pattern"
        ),
        {"pattern": _WORKFLOW_TYPE_PANEL},
    )
    rows = connection.execute(
        sa.text("SELECT id, service_id, slug, remote_id FROM reference_panels")
    ).all()
    taken = {(r.service_id, r.slug) for r in rows}
    for row in rows:
        parts = row.remote_id.removeprefix("apps@").split("@")
        if not row.remote_id.startswith("apps@") or len(parts) != 2:
            continue
        slug = _slug(parts[0])
        if (row.service_id, slug) in taken and slug != row.slug:
            slug = row.slug
        taken.add((row.service_id, slug))
        connection.execute(
            sa.text("UPDATE reference_panels SET version = :v, slug = :s WHERE id = :id"),
            {"v": parts[1], "s": slug, "id": row.id},
        )


def downgrade() -> None:
    op.drop_column("reference_panels", "chromosomes")
    op.drop_column("reference_panels", "location")
    op.drop_column("reference_panels", "version")
    op.drop_column("imputation_services", "workflow_profile")
    op.drop_column("imputation_services", "capabilities")
    op.drop_column("imputation_services", "api_url")
    op.drop_column("imputation_services", "cloudgene_app_version")
