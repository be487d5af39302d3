"""idempotency keys kept only as a keyed hash

`idempotency_key.key` held the Idempotency-Key as the client sent it, for 24 hours; clients build keys from
anything, client numbers included. The column becomes `key_hash`: HMAC-SHA256 of the key under a key derived from
PSEUDONYM_MASTER_KEY (service.incidents.idempotency.key_hash).

The rows are deleted, not re-hashed: a migration has no master key, and every row expires within 24 hours anyway.
A client that retries a request from before the upgrade with the same key gets its work done again rather than
replayed; for a create that is a 409 (the clientReference is already recorded), never a second incident.
Downgrading deletes the rows again, for the same reason.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 02:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM idempotency_key"))
    with op.batch_alter_table('idempotency_key', schema=None) as batch_op:
        batch_op.alter_column('key', new_column_name='key_hash', existing_type=sa.String(length=255),
                              type_=sa.String(length=64), existing_nullable=False)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM idempotency_key"))
    with op.batch_alter_table('idempotency_key', schema=None) as batch_op:
        batch_op.alter_column('key_hash', new_column_name='key', existing_type=sa.String(length=64),
                              type_=sa.String(length=255), existing_nullable=False)
