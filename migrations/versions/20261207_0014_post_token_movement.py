"""ImpactTokens: one database function posts a movement (mission service)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The five steps of a movement (make sure the balance row exists, lock it, look the key up,
# append the ledger row, move the balance) in one round trip: a spend costs the service one
# statement instead of five. The table CHECKs still guard every row it writes.
POST_FUNCTION = """
CREATE FUNCTION post_token_movement(
  p_human uuid, p_amount bigint, p_type text, p_reference text, p_description text,
  p_key text, p_digest bytea
) RETURNS TABLE (
  r_outcome text, r_id uuid, r_amount bigint, r_balance_before bigint, r_balance_after bigint,
  r_type text, r_reference_id text, r_description text, r_created_at timestamptz,
  r_balance bigint, r_total_earned bigint, r_total_spent bigint
) LANGUAGE plpgsql AS $$
DECLARE
  b token_balances%ROWTYPE;
  l token_ledger%ROWTYPE;
BEGIN
  INSERT INTO token_balances AS t (human_id) VALUES (p_human) ON CONFLICT DO NOTHING;
  SELECT * INTO b FROM token_balances AS t WHERE t.human_id = p_human FOR UPDATE;
  SELECT * INTO l FROM token_ledger AS t
    WHERE t.human_id = p_human AND t.idempotency_key = p_key;
  IF FOUND THEN
    RETURN QUERY SELECT
      CASE WHEN l.request_digest = p_digest THEN 'replayed' ELSE 'reused' END,
      l.id, l.amount, l.balance_before, l.balance_after, l.type::text, l.reference_id::text,
      l.description::text, l.created_at, b.balance, b.total_earned, b.total_spent;
    RETURN;
  END IF;
  IF b.balance + p_amount < 0 THEN
    RETURN QUERY SELECT 'insufficient', NULL::uuid, NULL::bigint, NULL::bigint, NULL::bigint,
      NULL::text, NULL::text, NULL::text, NULL::timestamptz,
      b.balance, b.total_earned, b.total_spent;
    RETURN;
  END IF;
  INSERT INTO token_ledger AS t (
    human_id, amount, balance_before, balance_after, type, reference_id, description,
    idempotency_key, request_digest
  ) VALUES (
    p_human, p_amount, b.balance, b.balance + p_amount, p_type, p_reference, p_description,
    p_key, p_digest
  ) RETURNING * INTO l;
  UPDATE token_balances AS t SET
    balance = b.balance + p_amount,
    total_earned = t.total_earned + GREATEST(p_amount, 0),
    total_spent = t.total_spent + GREATEST(-p_amount, 0),
    updated_at = now()
  WHERE t.human_id = p_human
  RETURNING * INTO b;
  RETURN QUERY SELECT 'posted', l.id, l.amount, l.balance_before, l.balance_after,
    l.type::text, l.reference_id::text, l.description::text, l.created_at,
    b.balance, b.total_earned, b.total_spent;
END;
$$
"""


def upgrade() -> None:
    op.execute(POST_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION post_token_movement(uuid, bigint, text, text, text, text, bytea)")
