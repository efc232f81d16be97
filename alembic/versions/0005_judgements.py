"""judgements

``judgements``: the analyst's verdict (relevant or not) on an item for one topic, from the web view; one per item
and topic, a new verdict replacing the old.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('judgements',
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('topic_id', sa.String(length=64), nullable=False),
    sa.Column('relevant', sa.Boolean(), nullable=False),
    sa.Column('judged', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_judgements_item_id_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['topic_id'], ['topics.id'], name=op.f('fk_judgements_topic_id_topics')),
    sa.PrimaryKeyConstraint('item_id', 'topic_id', name=op.f('pk_judgements'))
    )


def downgrade() -> None:
    op.drop_table('judgements')
