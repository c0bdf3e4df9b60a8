"""ledger: provenance log, checkpoints and double-entry money; append-only triggers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 08:28:48.236289
"""

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


APPEND_ONLY = (
    "ledger_entries",
    "ledger_nodes",
    "ledger_checkpoints",
    "ledger_accounts",
    "ledger_transactions",
    "ledger_postings",
)

# A transaction header is inserted after its postings; these refuse a header whose postings do
# not balance (or are fewer than two, or in another currency) and a posting added afterwards.
SQLITE_TRIGGERS = [
    *(
        f"""CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"""
        for table in APPEND_ONLY
        for verb in ("update", "delete")
    ),
    """CREATE TRIGGER ledger_postings_open_transaction BEFORE INSERT ON ledger_postings
    WHEN EXISTS (SELECT 1 FROM ledger_transactions WHERE idempotency_key = NEW.transaction_key)
    BEGIN SELECT RAISE(ABORT, 'ledger transaction is already recorded'); END""",
    """CREATE TRIGGER ledger_postings_account_currency BEFORE INSERT ON ledger_postings
    WHEN NEW.currency IS NOT (SELECT currency FROM ledger_accounts WHERE id = NEW.account_id)
    BEGIN SELECT RAISE(ABORT, 'posting currency differs from its account'); END""",
    """CREATE TRIGGER ledger_transactions_balanced BEFORE INSERT ON ledger_transactions
    WHEN (SELECT COUNT(*) FROM ledger_postings WHERE transaction_key = NEW.idempotency_key) < 2
      OR (SELECT SUM(CASE direction WHEN 'debit' THEN amount_minor ELSE -amount_minor END)
          FROM ledger_postings WHERE transaction_key = NEW.idempotency_key) <> 0
      OR EXISTS (SELECT 1 FROM ledger_postings
                 WHERE transaction_key = NEW.idempotency_key AND currency <> NEW.currency)
    BEGIN SELECT RAISE(ABORT, 'ledger transaction does not balance'); END""",
]

POSTGRES_TRIGGERS = [
    """CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
    END $$""",
    *(
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"""
        for table in APPEND_ONLY
    ),
    *(
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"""
        for table in APPEND_ONLY
    ),
    """CREATE FUNCTION ledger_check_posting() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM ledger_transactions WHERE idempotency_key = NEW.transaction_key)
      THEN
        RAISE EXCEPTION 'ledger transaction % is already recorded', NEW.transaction_key
          USING ERRCODE = 'check_violation';
      END IF;
      IF NEW.currency IS DISTINCT FROM
         (SELECT currency FROM ledger_accounts WHERE id = NEW.account_id) THEN
        RAISE EXCEPTION 'posting currency differs from its account'
          USING ERRCODE = 'check_violation';
      END IF;
      RETURN NEW;
    END $$""",
    """CREATE TRIGGER ledger_postings_check BEFORE INSERT ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_check_posting()""",
    """CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE n bigint; net numeric; other_currency boolean;
    BEGIN
      SELECT COUNT(*),
             COALESCE(SUM(CASE direction WHEN 'debit' THEN amount_minor ELSE -amount_minor END), 0),
             COALESCE(BOOL_OR(currency <> NEW.currency), false)
        INTO n, net, other_currency
        FROM ledger_postings WHERE transaction_key = NEW.idempotency_key;
      IF n < 2 OR net <> 0 OR other_currency THEN
        RAISE EXCEPTION 'ledger transaction % does not balance', NEW.idempotency_key
          USING ERRCODE = 'check_violation';
      END IF;
      RETURN NEW;
    END $$""",
    """CREATE TRIGGER ledger_transactions_balanced BEFORE INSERT ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced()""",
]


def _create_triggers() -> None:
    dialect = op.get_bind().dialect.name
    statements = {"sqlite": SQLITE_TRIGGERS, "postgresql": POSTGRES_TRIGGERS}.get(dialect)
    if statements is None:
        raise NotImplementedError(f"no ledger triggers written for {dialect}")
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=80), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "asset",
                "liability",
                "revenue",
                "expense",
                name="accountkind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("artist_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_accounts_code")),
    )
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_accounts_artist_id"), ["artist_id"], unique=False
        )

    op.create_table(
        "ledger_checkpoints",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name=op.f("pk_ledger_checkpoints")),
    )
    op.create_table(
        "ledger_entries",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("work_id", sa.BigInteger(), nullable=True),
        sa.Column("artist_id", sa.BigInteger(), nullable=True),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("organization_id", sa.BigInteger(), nullable=True),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_artist_id"), ["artist_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ledger_entries_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entries_order_id"), ["order_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ledger_entries_work_id"), ["work_id"], unique=False)

    op.create_table(
        "ledger_nodes",
        sa.Column(
            "key",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ledger_nodes")),
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("memo", sa.Text(), nullable=False),
        sa.Column(
            "entry_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_seq"],
            ["ledger_entries.seq"],
            name=op.f("fk_ledger_transactions_entry_seq_ledger_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("entry_seq", name=op.f("uq_ledger_transactions_entry_seq")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ledger_transactions_idempotency_key")),
    )
    op.create_table(
        "ledger_postings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transaction_key", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=6), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.CheckConstraint(
            "direction IN ('debit', 'credit')", name=op.f("ck_ledger_postings_direction_valid")
        ),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_ledger_postings_amount_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_postings_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_key"],
            ["ledger_transactions.idempotency_key"],
            name=op.f("fk_ledger_postings_transaction_key_ledger_transactions"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_postings")),
    )
    with op.batch_alter_table("ledger_postings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_postings_account_id_direction", ["account_id", "direction"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_postings_transaction_key"), ["transaction_key"], unique=False
        )

    _create_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in ("ledger_refuse_change", "ledger_check_posting", "ledger_check_balanced"):
            op.execute(f"DROP FUNCTION IF EXISTS {name}() CASCADE")
    with op.batch_alter_table("ledger_postings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_postings_transaction_key"))
        batch_op.drop_index("ix_ledger_postings_account_id_direction")

    op.drop_table("ledger_postings")
    op.drop_table("ledger_transactions")
    op.drop_table("ledger_nodes")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_work_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_entries_organization_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_entries_order_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_entries_kind"))
        batch_op.drop_index(batch_op.f("ix_ledger_entries_artist_id"))

    op.drop_table("ledger_entries")
    op.drop_table("ledger_checkpoints")
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_accounts_artist_id"))

    op.drop_table("ledger_accounts")
