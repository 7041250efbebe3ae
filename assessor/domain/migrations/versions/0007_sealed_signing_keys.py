"""signing keys: private keys sealed in the database

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 04:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Key files of earlier versions are sealed in on first use by whichever machine has them.
    with op.batch_alter_table('signing_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('private_key_sealed', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('signing_keys', schema=None) as batch_op:
        batch_op.drop_column('private_key_sealed')
