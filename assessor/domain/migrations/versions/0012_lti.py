"""lti 1.3: platforms, linked accounts, grade targets and their deliveries, launch data

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 07:20:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_WHEN = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        'lti_platforms',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', _TEXT(length=120), nullable=False),
        sa.Column('issuer', _TEXT(length=500), nullable=False),
        sa.Column('client_id', _TEXT(length=255), nullable=False),
        sa.Column('auth_login_url', _TEXT(length=1000), nullable=False),
        sa.Column('auth_token_url', _TEXT(length=1000), nullable=False),
        sa.Column('key_set_url', _TEXT(length=1000), nullable=False),
        sa.Column('deployment_ids', sa.Text(), nullable=False),
        sa.Column('created_at', _WHEN(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('issuer', 'client_id'),
    )
    op.create_table(
        'lti_tool_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kid', _TEXT(length=64), nullable=False),
        sa.Column('public_pem', sa.Text(), nullable=False),
        sa.Column('private_sealed', sa.Text(), nullable=False),
        sa.Column('created_at', _WHEN(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('kid'),
    )
    op.create_table(
        'lti_accounts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('platform_id', sa.Integer(), nullable=False),
        sa.Column('subject', _TEXT(length=255), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', _WHEN(), nullable=False),
        sa.ForeignKeyConstraint(['platform_id'], ['lti_platforms.id']),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('platform_id', 'subject'),
    )
    with op.batch_alter_table('lti_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lti_accounts_platform_id'), ['platform_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lti_accounts_user_id'), ['user_id'], unique=False)
    op.create_table(
        'lti_grade_targets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('platform_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('rubric_id', _TEXT(length=64), nullable=False),
        sa.Column('subject', _TEXT(length=255), nullable=False),
        sa.Column('lineitem_url', _TEXT(length=1000), nullable=False),
        sa.Column('scopes', sa.Text(), nullable=False),
        sa.Column('created_at', _WHEN(), nullable=False),
        sa.ForeignKeyConstraint(['platform_id'], ['lti_platforms.id']),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('platform_id', 'user_id', 'rubric_id', 'lineitem_url'),
    )
    with op.batch_alter_table('lti_grade_targets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lti_grade_targets_user_id'), ['user_id'], unique=False)
    op.create_table(
        'lti_grade_sends',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('target_id', sa.Integer(), nullable=False),
        sa.Column('attempt_id', sa.Integer(), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('maximum', sa.Float(), nullable=False),
        sa.Column('comment', _TEXT(length=1000), nullable=False),
        sa.Column('status', _TEXT(length=16), nullable=False),
        sa.Column('tries', sa.Integer(), nullable=False),
        sa.Column('last_error', _TEXT(length=500), nullable=True),
        sa.Column('created_at', _WHEN(), nullable=False),
        sa.Column('sent_at', _WHEN(), nullable=True),
        sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id']),
        sa.ForeignKeyConstraint(['target_id'], ['lti_grade_targets.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('lti_grade_sends', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lti_grade_sends_target_id'), ['target_id'], unique=False)
    op.create_table(
        'lti_launch_values',
        sa.Column('key', _TEXT(length=255), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('expires_at', _WHEN(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )


def downgrade() -> None:
    op.drop_table('lti_launch_values')
    with op.batch_alter_table('lti_grade_sends', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lti_grade_sends_target_id'))
    op.drop_table('lti_grade_sends')
    with op.batch_alter_table('lti_grade_targets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lti_grade_targets_user_id'))
    op.drop_table('lti_grade_targets')
    with op.batch_alter_table('lti_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lti_accounts_user_id'))
        batch_op.drop_index(batch_op.f('ix_lti_accounts_platform_id'))
    op.drop_table('lti_accounts')
    op.drop_table('lti_tool_keys')
