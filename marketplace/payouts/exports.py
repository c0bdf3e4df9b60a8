"""A monthly statement as the files an artist downloads: CSV for spreadsheets, PDF to read.

Amounts are written from integer minor units (statements.major_units), never through floats.
The CSV is opened by spreadsheets, which run a cell starting with = + - @ (or a tab or carriage
return) as a formula: every text cell that could come from someone else (names, memos) is
prefixed with an apostrophe; our own amount columns are numbers and are written as they are.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fpdf import FPDF

from marketplace.payouts.statements import Statement, major_units

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def statement_csv(st: Statement) -> str:
    """The statement as CSV: a header block, the ledger lines with a running balance, then
    the transfers sent and the reversals of the month."""
    out = io.StringIO()
    w = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    cur = st.currency
    w.writerow(["Statement", safe_cell(st.artist_name)])
    w.writerow(["Month (UTC)", st.label])
    w.writerow(["Currency", cur.upper()])
    w.writerow(["Ledger account", st.account_code])
    w.writerow(["Opening balance", major_units(st.opening_minor, cur)])
    w.writerow(["Credits", major_units(st.credits_minor, cur)])
    w.writerow(["Debits", major_units(-st.debits_minor, cur)])
    w.writerow(["Closing balance", major_units(st.closing_minor, cur)])
    w.writerow([])
    w.writerow(
        [
            "Date (UTC)",
            "Ledger entry",
            "Kind",
            "Order",
            "Payout",
            "Description",
            "Amount",
            "Balance",
        ]
    )
    for line in st.lines:
        w.writerow(
            [
                _when(line.created_at),
                line.seq,
                safe_cell(line.kind_label),
                "" if line.order_id is None else line.order_id,
                "" if line.payout_id is None else line.payout_id,
                safe_cell(line.memo),
                major_units(line.amount_minor, cur),
                major_units(line.balance_minor, cur),
            ]
        )
    w.writerow([])
    w.writerow(["Transfers sent"])
    w.writerow(["Date (UTC)", "Payout", "Order", "Amount", "Stripe transfer"])
    for t in st.transfers:
        w.writerow(
            [
                _when(t.sent_at),
                t.payout_id,
                t.order_id,
                major_units(t.amount_minor, cur),
                safe_cell(t.stripe_transfer_id),
            ]
        )
    w.writerow([])
    w.writerow(["Transfer reversals"])
    w.writerow(
        [
            "Date (UTC)",
            "Payout",
            "Order",
            "Stripe transfer",
            "Stripe reversal",
            "Amount",
            "Status",
            "Message",
        ]
    )
    for r in st.reversals:
        w.writerow(
            [
                _when(r.at),
                r.payout_id,
                r.order_id,
                safe_cell(r.stripe_transfer_id or ""),
                safe_cell(r.stripe_reversal_id or ""),
                major_units(r.amount_minor, cur),
                safe_cell(r.status),
                safe_cell(r.failure_message),
            ]
        )
    return out.getvalue()


# --- PDF ------------------------------------------------------------------------------------


def _latin1(text: Any) -> str:
    """fpdf2's built-in Helvetica is Latin-1: other characters print as '?' (the CSV keeps
    every character)."""
    return str(text).encode("latin-1", "replace").decode("latin-1")


class _Pdf(FPDF):
    label = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=7)
        self.set_text_color(110)
        self.cell(0, 5, _latin1(f"{self.label} - page {self.page_no()}"), align="C")


def _row(
    pdf: FPDF, widths: tuple[int, ...], cells: list[str], aligns: str, bold: bool = False
) -> None:
    pdf.set_font("Helvetica", "B" if bold else "", 7.5)
    for width, value, align in zip(widths, cells, aligns, strict=True):
        pdf.cell(width, 4.6, _latin1(value)[:70], border="B" if bold else 0, align=align)
    pdf.ln()


def statement_pdf(st: Statement, *, compress: bool = True) -> bytes:
    """The statement as an A4 PDF; `compress=False` leaves its text readable in the bytes."""
    cur = st.currency

    def money(amount: int) -> str:
        return f"{major_units(amount, cur, grouped=True)} {cur.upper()}"

    pdf = _Pdf(format="A4")
    pdf.label = f"Statement {st.label}, {st.artist_name}"
    pdf.set_compression(compress)
    pdf.set_title(_latin1(f"Statement {st.label}"))
    pdf.set_creator("marketplace")
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(f"Earnings statement - {st.label}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    pdf.multi_cell(
        0,
        4.5,
        "Every line below is a posting on your account in the platform's double-entry ledger "
        "(times in UTC). Opening balance plus the lines equals the closing balance, which is "
        "what the ledger holds for you at the end of the month: earnings not yet paid out "
        "(negative: money owed back after a refund). Long descriptions are shortened here; "
        "the CSV statement has them in full.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    facts = [
        ("Artist", st.artist_name),
        ("Ledger account", st.account_code),
        ("Opening balance", money(st.opening_minor)),
        ("Credits", money(st.credits_minor)),
        ("Debits", money(-st.debits_minor)),
        ("Closing balance", money(st.closing_minor)),
        ("Generated", f"{st.generated_at:%Y-%m-%d %H:%M} UTC"),
    ]
    for label, value in facts:
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(42, 5.5, _latin1(label))
        pdf.set_font("Helvetica", size=9)
        pdf.cell(0, 5.5, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Ledger lines", new_x="LMARGIN", new_y="NEXT")
    widths = (27, 11, 40, 12, 12, 48, 20, 20)
    aligns = "LRLRRLRR"
    _row(
        pdf,
        widths,
        ["Date (UTC)", "Entry", "Kind", "Order", "Payout", "Description", "Amount", "Balance"],
        aligns,
        bold=True,
    )
    _row(
        pdf,
        widths,
        [
            "",
            "",
            "Opening balance",
            "",
            "",
            "",
            "",
            major_units(st.opening_minor, cur, grouped=True),
        ],
        aligns,
    )
    for line in st.lines:
        _row(
            pdf,
            widths,
            [
                f"{line.created_at:%Y-%m-%d %H:%M}",
                str(line.seq),
                line.kind_label[:30],
                "" if line.order_id is None else str(line.order_id),
                "" if line.payout_id is None else str(line.payout_id),
                line.memo[:34],
                major_units(line.amount_minor, cur, grouped=True),
                major_units(line.balance_minor, cur, grouped=True),
            ],
            aligns,
        )
    _row(
        pdf,
        widths,
        [
            "",
            "",
            "Closing balance",
            "",
            "",
            "",
            "",
            major_units(st.closing_minor, cur, grouped=True),
        ],
        aligns,
        bold=True,
    )
    if not st.lines:
        pdf.set_font("Helvetica", size=9)
        pdf.cell(0, 6, "No activity this month.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Transfers sent to your Stripe account", new_x="LMARGIN", new_y="NEXT")
    t_widths = (32, 18, 18, 28, 94)
    _row(
        pdf,
        t_widths,
        ["Date (UTC)", "Payout", "Order", "Amount", "Stripe transfer"],
        "LRRRL",
        bold=True,
    )
    for t in st.transfers:
        _row(
            pdf,
            t_widths,
            [
                f"{t.sent_at:%Y-%m-%d %H:%M}",
                str(t.payout_id),
                str(t.order_id),
                money(t.amount_minor),
                t.stripe_transfer_id,
            ],
            "LRRRL",
        )
    if not st.transfers:
        pdf.set_font("Helvetica", size=9)
        pdf.cell(0, 6, "None this month.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Transfer reversals after refunds", new_x="LMARGIN", new_y="NEXT")
    r_widths = (27, 14, 14, 38, 38, 24, 35)
    _row(
        pdf,
        r_widths,
        ["Date (UTC)", "Payout", "Order", "Stripe transfer", "Stripe reversal", "Amount", "Status"],
        "LRRLLRL",
        bold=True,
    )
    for r in st.reversals:
        _row(
            pdf,
            r_widths,
            [
                f"{r.at:%Y-%m-%d %H:%M}",
                str(r.payout_id),
                str(r.order_id),
                r.stripe_transfer_id or "",
                r.stripe_reversal_id or "",
                money(r.amount_minor),
                r.status if r.status != "failed" else "failed: owed back",
            ],
            "LRRLLRL",
        )
        if r.failure_message:
            pdf.set_font("Helvetica", size=7.5)
            pdf.multi_cell(
                0, 4, _latin1(f"Stripe: {r.failure_message}"), new_x="LMARGIN", new_y="NEXT"
            )
    if not st.reversals:
        pdf.set_font("Helvetica", size=9)
        pdf.cell(0, 6, "None this month.", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
