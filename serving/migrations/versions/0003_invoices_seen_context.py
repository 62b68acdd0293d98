"""invoices seen: the context later invoices' look-back features need (lane, departure, spot, weight)

Rows seen before this revision keep NULLs: they still count for same-shipment and carrier features,
and for lane features once they age out of the look-back window (60 days) nothing is lost.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 06:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = (
    ("origin", sa.String(8)), ("destination", sa.String(8)),
    ("scheduled_departure", sa.DateTime(timezone=True)), ("is_spot", sa.Boolean()),
    ("chargeable_weight_kg", sa.Float()),
)


def upgrade() -> None:
    with op.batch_alter_table("invoices_seen") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    op.create_index("ix_invoices_seen_received", "invoices_seen", ["carrier", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_invoices_seen_received", table_name="invoices_seen")
    with op.batch_alter_table("invoices_seen") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
