"""items by date

``ix_items_when``: an index on an item's date as the workbench and the digest read it, ``coalesce(published,
fetched)``, then its id: the item lists (newest first, a page at a time) and the periods of the digest and /trends
read it instead of sorting or scanning every item. SQLite cannot reflect an index on an expression: a later batch
migration that recreates ``items`` there must create it again (as it would 0006's search triggers).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_index('ix_items_when', [sa.text('coalesce(published, fetched)'), 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_when')
