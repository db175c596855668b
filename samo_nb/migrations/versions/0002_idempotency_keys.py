"""Idempotency keys: each request that came with a key, and the response it got.

Hand-written package data (nbdev exports only the notebooks' modules). It must describe
exactly the model `samo_nb.store.IdempotencyKey`: tests compare the two.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'idempotency_keys',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('person', sa.String(200), nullable=False),
        sa.Column('key', sa.String(255), nullable=False),
        sa.Column('request_hash', sa.String(64), nullable=False),
        sa.Column('entry_id', sa.Integer(), sa.ForeignKey('entries.id', ondelete='SET NULL'), nullable=True),
        sa.Column('response', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.UniqueConstraint('person', 'key', name='uq_idempotency_person_key'),
    )


def downgrade() -> None:
    op.drop_table('idempotency_keys')
