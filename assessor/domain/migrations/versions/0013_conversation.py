"""conversation: learners' questions and regrade requests per criterion; replies to and edits of line comments;
an index on attempts' commits (the integrity flags on the review queue)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 11:00:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_WHEN = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        'criterion_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('attempt_id', sa.Integer(), nullable=False),
        sa.Column('criterion_id', _TEXT(length=64), nullable=False),
        sa.Column('kind', _TEXT(length=16), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', _WHEN(), nullable=False),
        sa.Column('answered_at', _WHEN(), nullable=True),
        sa.Column('answered_by', sa.Integer(), nullable=True),
        sa.Column('answer', sa.Text(), nullable=True),
        sa.Column('level_before', sa.Integer(), nullable=True),
        sa.Column('level_after', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id']),
        sa.ForeignKeyConstraint(['author_id'], ['users.id']),
        sa.ForeignKeyConstraint(['answered_by'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('criterion_requests', schema=None) as batch_op:
        batch_op.create_index('ix_criterion_requests_attempt', ['attempt_id', 'criterion_id'], unique=False)
        batch_op.create_index('ix_criterion_requests_open', ['answered_at', 'attempt_id'], unique=False)
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.create_index('ix_attempts_commit', ['commit'], unique=False)
    with op.batch_alter_table('line_comments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('edited_at', _WHEN(), nullable=True))
        batch_op.create_foreign_key('fk_line_comments_parent_id', 'line_comments', ['parent_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_attempts_commit')
    with op.batch_alter_table('line_comments', schema=None) as batch_op:
        batch_op.drop_constraint('fk_line_comments_parent_id', type_='foreignkey')
        batch_op.drop_column('edited_at')
        batch_op.drop_column('parent_id')
    with op.batch_alter_table('criterion_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_criterion_requests_open')
        batch_op.drop_index('ix_criterion_requests_attempt')
    op.drop_table('criterion_requests')
