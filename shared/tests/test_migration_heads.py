"""``alembic_heads`` reads a history's heads from its revision files without Alembic: it must
agree with Alembic's own ``ScriptDirectory.get_heads()`` on every service's history and on the
shapes Alembic allows (a branch, a merge, plain and annotated assignments)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from fedimpute_shared.fleet import FLEET
from fedimpute_shared.migrations import alembic_config, alembic_heads

DEMO_MIGRATIONS = Path(__file__).parent / "demo_service" / "migrations"
HISTORIES = [s.migrations_dir for s in FLEET if s.migrations_dir is not None] + [DEMO_MIGRATIONS]


def _alembic_says(migrations_dir: Path) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(migrations_dir)).get_heads())


@pytest.mark.parametrize("migrations_dir", HISTORIES, ids=lambda p: p.parent.name)
def test_every_service_history_has_the_heads_alembic_finds(migrations_dir: Path) -> None:
    assert alembic_heads(migrations_dir) == _alembic_says(migrations_dir)
    assert len(alembic_heads(migrations_dir)) == 1


def _revision(versions: Path, name: str, down: str, annotated: bool = True) -> None:
    kind = ": str | tuple[str, ...] | None" if annotated else ""
    (versions / f"{name}.py").write_text(
        f'"""{name}"""\n'
        f"revision{': str' if annotated else ''} = {name!r}\n"
        f"down_revision{kind} = {down}\n"
        "branch_labels = None\n"
        "depends_on = None\n\n\n"
        "def upgrade() -> None:\n    pass\n\n\n"
        "def downgrade() -> None:\n    pass\n"
    )


def _history(tmp_path: Path) -> Path:
    migrations = tmp_path / "migrations"
    (migrations / "versions").mkdir(parents=True)
    (migrations / "script.py.mako").write_text("")
    (migrations / "env.py").write_text("")
    return migrations


def test_a_branch_has_two_heads_and_a_merge_joins_them(tmp_path: Path) -> None:
    migrations = _history(tmp_path)
    versions = migrations / "versions"
    _revision(versions, "a1", "None")
    _revision(versions, "b1", "'a1'")
    _revision(versions, "c1", "'a1'", annotated=False)  # plain assignments, as older files
    assert alembic_heads(migrations) == _alembic_says(migrations) == {"b1", "c1"}
    _revision(versions, "m1", "('b1', 'c1')")
    assert alembic_heads(migrations) == _alembic_says(migrations) == {"m1"}
