"""access events sealed after commit, with chain key versions

A request used to take one advisory lock for the whole deployment, read the chain's head and insert a linked event,
so every audited request of every host waited for that lock. Requests now insert their event unlinked; a sealer
links committed events afterwards (service/audit/chain.py). The sealing columns are nullable, `chain_seq` orders the
chain, `key_version` names the chain key (a handover event also carries `handover_hash`, signed by the new key),
and `sealed_at` measures the sealer's lag. The request signs each new event's content (`mac`, under chain key
`mac_version`), so an event inserted by anyone without the key is found once sealed. The events already in the chain keep their place (chain_seq = seq) under
key version 1, the key they were signed with.

On PostgreSQL a trigger refuses any change to a sealed event, any change but sealing (all sealing columns at once) to
an unsealed one, and an event inserted already sealed: for every role, the table owner's included, unless it turns
the trigger off (which only the owner can). A half-sealed event would otherwise stop every sealer behind it.

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-02 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

CONTENT = ("seq", "occurred_at", "event_type", "client_id", "role", "acted_for", "municipality_code", "route",
           "records::text", "record_count", "filters::text", "outcome", "request_id", "mac", "mac_version")

SEALING = ("chain_seq", "prev_hash", "hash", "key_version", "handover_hash", "sealed_at")
SEALED_TOGETHER = ("chain_seq", "prev_hash", "hash", "key_version", "sealed_at")  # a handover also has handover_hash

SEAL_ONLY = f"""
CREATE FUNCTION access_event_seal_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF {" OR ".join(f"NEW.{c} IS NOT NULL" for c in SEALING)} THEN
            RAISE EXCEPTION 'access event % is inserted unsealed: only the sealer links it into the chain', NEW.seq;
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.chain_seq IS NOT NULL OR OLD.hash IS NOT NULL THEN
        RAISE EXCEPTION 'access event % is sealed and is never changed', OLD.seq;
    END IF;
    IF ({", ".join("NEW." + c for c in CONTENT)}) IS DISTINCT FROM ({", ".join("OLD." + c for c in CONTENT)}) THEN
        RAISE EXCEPTION 'only the sealing columns of access event % may be written', OLD.seq;
    END IF;
    IF {" OR ".join(f"NEW.{c} IS NULL" for c in SEALED_TOGETHER)} THEN
        RAISE EXCEPTION 'access event % is sealed whole: its chain place, link, hash, key version and time together',
            OLD.seq;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER access_event_seal_only BEFORE INSERT OR UPDATE ON access_event
    FOR EACH ROW EXECUTE FUNCTION access_event_seal_only();
"""


def upgrade() -> None:
    with op.batch_alter_table('access_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('mac_version', sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column('chain_seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      nullable=True))
        batch_op.add_column(sa.Column('key_version', sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column('handover_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('sealed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column('hash', existing_type=sa.String(length=64), nullable=True)
        batch_op.create_unique_constraint(batch_op.f('uq_access_event_chain_seq'), ['chain_seq'])
    op.execute("UPDATE access_event SET chain_seq = seq, key_version = 1, sealed_at = occurred_at")
    op.create_index('ix_access_event_unsealed', 'access_event', ['seq'], unique=False,
                    postgresql_where=sa.text('chain_seq IS NULL'), sqlite_where=sa.text('chain_seq IS NULL'))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(SEAL_ONLY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER access_event_seal_only ON access_event")
        op.execute("DROP FUNCTION access_event_seal_only()")
    op.drop_index('ix_access_event_unsealed', table_name='access_event',
                  postgresql_where=sa.text('chain_seq IS NULL'), sqlite_where=sa.text('chain_seq IS NULL'))
    # An unsealed event cannot be linked without the chain key, nor be dropped: seal first.
    if op.get_bind().scalar(sa.text("SELECT count(*) FROM access_event WHERE chain_seq IS NULL")):
        raise RuntimeError("access events are waiting to be sealed: run `risk-register audit seal` first")
    with op.batch_alter_table('access_event', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_access_event_chain_seq'), type_='unique')
        batch_op.alter_column('hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column('sealed_at')
        batch_op.drop_column('handover_hash')
        batch_op.drop_column('key_version')
        batch_op.drop_column('chain_seq')
        batch_op.drop_column('mac_version')
        batch_op.drop_column('mac')
