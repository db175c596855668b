"""The first schema of the journal store: entries and the emotions they are filtered by.

Hand-written package data (nbdev exports only the notebooks' modules). It must describe
exactly the models of `samo_nb.store` (`Entry`, `EntryLabel`): tests compare the two.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'entries',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('person', sa.String(200), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('recorded_at', sa.DateTime(), nullable=False),
        sa.Column('added_at', sa.DateTime(), nullable=False),
        sa.Column('source_kind', sa.String(16), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('transcript', sa.Text(), nullable=False),
        sa.Column('duration_s', sa.Float(), nullable=True),
        sa.Column('valence', sa.Float(), nullable=True),
        sa.Column('dominant', sa.String(32), nullable=True),
        sa.Column('analysis', sa.JSON(), nullable=False),
        sa.Column('embedding', sa.LargeBinary(), nullable=True),
        sa.Column('model_name', sa.String(200), nullable=False),
        sa.Column('model_hash', sa.String(64), nullable=False),
        sa.Column('content_hash', sa.String(64), nullable=False),
        sa.Column('audio_path', sa.Text(), nullable=True),
        sa.UniqueConstraint('person', 'day', 'content_hash', name='uq_entries_person_day_content'),
    )
    op.create_table(
        'entry_labels',
        sa.Column('entry_id', sa.Integer(), sa.ForeignKey('entries.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('label', sa.String(32), primary_key=True),
    )
    op.create_index('ix_entry_labels_label', 'entry_labels', ['label'])


def downgrade() -> None:
    op.drop_index('ix_entry_labels_label', table_name='entry_labels')
    op.drop_table('entry_labels')
    op.drop_table('entries')
