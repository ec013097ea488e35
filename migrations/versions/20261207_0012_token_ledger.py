"""ImpactTokens: balances and the append-only ledger (mission service)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The ledger is history: no row is ever changed or removed, whoever asks. (TRUNCATE, an
# owner's operation that empties a whole database's worth, stays possible for test resets.)
APPEND_ONLY_FUNCTION = """
CREATE FUNCTION token_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'token_ledger is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$
"""
APPEND_ONLY_TRIGGER = """
CREATE TRIGGER token_ledger_append_only
  BEFORE UPDATE OR DELETE ON token_ledger
  FOR EACH STATEMENT EXECUTE FUNCTION token_ledger_append_only()
"""


def upgrade() -> None:
    uuid = postgresql.UUID(as_uuid=True)
    now = sa.text("now()")
    op.create_table(
        "token_balances",
        sa.Column("human_id", uuid, nullable=False),
        sa.Column("balance", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_earned", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_spent", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_token_balances_balance_not_negative")),
        sa.CheckConstraint(
            "balance = total_earned - total_spent",
            name=op.f("ck_token_balances_balance_is_totals"),
        ),
        sa.ForeignKeyConstraint(
            ["human_id"],
            ["humans.id"],
            name=op.f("fk_token_balances_human_id_humans"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("human_id", name=op.f("pk_token_balances")),
    )
    op.create_table(
        "token_ledger",
        sa.Column("id", uuid, server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("human_id", uuid, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_before", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("reference_id", sa.String(64), server_default="", nullable=False),
        sa.Column("description", sa.String(500), server_default="", nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("request_digest", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_token_ledger_amount_not_zero")),
        sa.CheckConstraint(
            "balance_after = balance_before + amount", name=op.f("ck_token_ledger_adds_up")
        ),
        sa.CheckConstraint("balance_after >= 0", name=op.f("ck_token_ledger_never_negative")),
        sa.ForeignKeyConstraint(
            ["human_id"],
            ["humans.id"],
            name=op.f("fk_token_ledger_human_id_humans"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_ledger")),
    )
    op.create_index(
        "uq_token_ledger_key", "token_ledger", ["human_id", "idempotency_key"], unique=True
    )
    op.create_index("ix_token_ledger_human", "token_ledger", ["human_id", "created_at", "id"])
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(APPEND_ONLY_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER token_ledger_append_only ON token_ledger")
    op.execute("DROP FUNCTION token_ledger_append_only()")
    op.drop_table("token_ledger")
    op.drop_table("token_balances")
