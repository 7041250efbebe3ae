"""data integrity: the issuer's did:web keys, and each certificate's credential with an embedded proof

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 06:20:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'did_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('fragment', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('public_multibase', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column('private_key_sealed', sa.Text(), nullable=True),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('fragment'),
    )
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credential_ld', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.drop_column('credential_ld')
    op.drop_table('did_keys')
