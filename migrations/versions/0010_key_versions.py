"""key versions of visitor fingerprints, and indexes to find what a key rotation has still to re-key

`risk-register keys rotate` re-keys stored pseudonyms and fingerprints in batches while the service runs: each row
says which key version its values are under, so reads stay right during the run and the run resumes where it
stopped. Pseudonyms had their version already; fingerprints get one (existing ones are under version 1, the only
version before key rings).

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-02 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('visitor_fingerprint_key_version', sa.SmallInteger(), nullable=True))
        batch_op.create_index('ix_incident_resident_key_version', ['resident_key_version'], unique=False)
        batch_op.create_index('ix_incident_visitor_fingerprint_key_version', ['visitor_fingerprint_key_version'],
                              unique=False)
    op.execute("UPDATE incident SET visitor_fingerprint_key_version = 1 "
               "WHERE visitor_plate_fingerprint IS NOT NULL OR visitor_phone_fingerprint IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_visitor_fingerprint_key_version')
        batch_op.drop_index('ix_incident_resident_key_version')
        batch_op.drop_column('visitor_fingerprint_key_version')
