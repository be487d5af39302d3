"""incidents, revisions, idempotency keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 05:17:38.864637
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('idempotency_key',
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('response_status', sa.SmallInteger(), nullable=False),
    sa.Column('response_body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('client_id', 'key', name=op.f('pk_idempotency_key'))
    )
    with op.batch_alter_table('idempotency_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_key_expires_at'), ['expires_at'], unique=False)

    op.create_table('incident',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('institution_id', sa.Uuid(), nullable=False),
    sa.Column('location_id', sa.Uuid(), nullable=False),
    sa.Column('client_reference', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('exploitation_type', sa.String(length=40), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resident_pseudonym', sa.String(length=64), nullable=True),
    sa.Column('resident_key_version', sa.SmallInteger(), nullable=True),
    sa.Column('resident_age_band', sa.String(length=20), nullable=False),
    sa.Column('indicators', sa.JSON(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('absence_ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('absence_whereabouts_known', sa.Boolean(), nullable=True),
    sa.Column('absence_risk_level', sa.String(length=20), nullable=True),
    sa.Column('absence_reported_missing_to_police', sa.Boolean(), nullable=True),
    sa.Column('visitor_estimated_age_band', sa.String(length=20), nullable=True),
    sa.Column('visitor_relation_claimed', sa.String(length=40), nullable=True),
    sa.Column('visitor_plate_fingerprint', sa.String(length=64), nullable=True),
    sa.Column('visitor_phone_fingerprint', sa.String(length=64), nullable=True),
    sa.Column('meldcode_step', sa.SmallInteger(), nullable=True),
    sa.Column('reported_to', sa.JSON(), nullable=False),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.Enum('active', 'retracted', name='status', native_enum=False, length=30), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('taxonomy_version', sa.String(length=20), nullable=False),
    sa.Column('record_key', sa.SmallInteger(), nullable=False),
    sa.Column('retracted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_incident_institution_id_institution')),
    sa.ForeignKeyConstraint(['location_id'], ['location.id'], name=op.f('fk_incident_location_id_location')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident')),
    sa.UniqueConstraint('institution_id', 'client_reference', name=op.f('uq_incident_institution_id_client_reference'))
    )
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.create_index('ix_incident_institution_id_occurred_at', ['institution_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_incident_institution_id_recorded_at_id', ['institution_id', 'recorded_at', 'id'], unique=False)
        batch_op.create_index('ix_incident_institution_id_resident_pseudonym', ['institution_id', 'resident_pseudonym'], unique=False)
        batch_op.create_index('ix_incident_location_id_occurred_at', ['location_id', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_visitor_phone_fingerprint'), ['visitor_phone_fingerprint'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_visitor_plate_fingerprint'), ['visitor_plate_fingerprint'], unique=False)

    op.create_table('incident_revision',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('incident_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_incident_revision_incident_id_incident'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_revision')),
    sa.UniqueConstraint('incident_id', 'version', name=op.f('uq_incident_revision_incident_id_version'))
    )


def downgrade() -> None:
    op.drop_table('incident_revision')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_visitor_plate_fingerprint'))
        batch_op.drop_index(batch_op.f('ix_incident_visitor_phone_fingerprint'))
        batch_op.drop_index('ix_incident_location_id_occurred_at')
        batch_op.drop_index('ix_incident_institution_id_resident_pseudonym')
        batch_op.drop_index('ix_incident_institution_id_recorded_at_id')
        batch_op.drop_index('ix_incident_institution_id_occurred_at')

    op.drop_table('incident')
    with op.batch_alter_table('idempotency_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_key_expires_at'))

    op.drop_table('idempotency_key')
