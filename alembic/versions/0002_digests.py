"""digests and story keys

``digests``: one row per digest period (status, message, Message-ID, sent time), so that each period is sent once.
``story_keys``: the LSH band keys of items' MinHash signatures, through which a new item finds its story.
Items stored before this revision keep ``story_id`` NULL until a digest covers them (it clusters them first).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('digests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=32), nullable=False),
    sa.Column('starts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('message_id', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.Column('stories', sa.Integer(), nullable=False),
    sa.Column('message', sa.LargeBinary(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_to', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_digests')),
    sa.UniqueConstraint('period', name=op.f('uq_digests_period'))
    )
    op.create_table('story_keys',
    sa.Column('key', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_story_keys_item_id_items'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('key', 'item_id', name=op.f('pk_story_keys'))
    )
    with op.batch_alter_table('story_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_story_keys_item_id'), ['item_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('story_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_story_keys_item_id'))

    op.drop_table('story_keys')
    op.drop_table('digests')
