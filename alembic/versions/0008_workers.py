"""workers and feed leases

``workers``: the daemons sharing one PostgreSQL database (id host:pid, start, last heartbeat). ``feeds`` gains
``leased_by`` and ``lease_until`` (which worker polls the feed now, until when by the database's clock) and
``polled_by`` (the worker whose poll was recorded last); ``items`` gains ``text_leased_by`` and ``text_lease_until``
(the worker fetching the item's article, until when).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('workers',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('started', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workers'))
    )
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('polled_by', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('leased_by', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_feeds_leased_by'), ['leased_by'], unique=False)
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('text_leased_by', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('text_lease_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_column('text_lease_until')
        batch_op.drop_column('text_leased_by')
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feeds_leased_by'))
        batch_op.drop_column('lease_until')
        batch_op.drop_column('leased_by')
        batch_op.drop_column('polled_by')
    op.drop_table('workers')
