"""alerts

``alert_messages``: one row per alert batch and channel (email or webhook), recorded before it is sent, with the
digests' send states and a backoff time (``not_before``). ``alert_stories``: the stories each alert has recorded;
its primary key (alert, story) keeps a story to one message per alert across restarts and daemons.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_messages',
    sa.Column('alert', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
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
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_messages'))
    )
    with op.batch_alter_table('alert_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_messages_alert'), ['alert'], unique=False)
    op.create_table('alert_stories',
    sa.Column('alert', sa.String(length=64), nullable=False),
    sa.Column('story_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('batch', sa.Text(), nullable=False),
    sa.Column('recorded', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('alert', 'story_id', name=op.f('pk_alert_stories'))
    )


def downgrade() -> None:
    op.drop_table('alert_stories')
    with op.batch_alter_table('alert_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_messages_alert'))
    op.drop_table('alert_messages')
