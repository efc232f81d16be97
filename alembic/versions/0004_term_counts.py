"""term counts for story clustering

``term_counts``: per clustering feature, how many stored items have it (key 0: how many items were counted); the
TF-IDF weights of story clustering come from it (store/stories.py). The keys in ``story_keys`` change meaning
(an item's entities and rarest words instead of MinHash bands), so the old ones are dropped: stored items keep
their stories, and ``talentwatch recrawl --no-archive`` clusters a range again with the new method.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('term_counts',
    sa.Column('key', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('df', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_term_counts'))
    )
    op.execute("DELETE FROM story_keys")


def downgrade() -> None:
    op.drop_table('term_counts')
    op.execute("DELETE FROM story_keys")
