"""repository links: assessment on push (webhook secrets, deliveries) and where each attempt came from

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 07:00:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'repository_links',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('rubric_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('source_url', sqlmodel.sql.sqltypes.AutoString(length=1100), nullable=False),
        sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('branch', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column('tag_pattern', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column('secret_sealed', sa.Text(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('last_delivery_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('repository_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repository_links_user_id'), ['user_id'], unique=False)
    op.create_table(
        'webhook_deliveries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('link_id', sa.Integer(), nullable=False),
        sa.Column('delivery_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('attempt_id', sa.Integer(), nullable=True),
        sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id']),
        sa.ForeignKeyConstraint(['link_id'], ['repository_links.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('link_id', 'delivery_id'),
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_link_id'), ['link_id'], unique=False)
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default='form'))
        batch_op.add_column(sa.Column('pushed_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_column('pushed_by')
        batch_op.drop_column('origin')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_link_id'))
    op.drop_table('webhook_deliveries')
    with op.batch_alter_table('repository_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repository_links_user_id'))
    op.drop_table('repository_links')
