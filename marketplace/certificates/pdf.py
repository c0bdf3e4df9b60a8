"""The certificate as a PDF people read: a one-page summary, then the items (small orders).

The JSON is the proof; this is its human-readable face, drawn with fpdf2's built-in Helvetica
(Latin-1: other characters print as "?"; the JSON keeps every name exactly).
"""

from __future__ import annotations

from typing import Any

from fpdf import FPDF

_LICENCE_NAMES = {"licensed": "Licensed", "cc0": "Donated (CC0)", "public_domain": "Public domain"}


def _latin1(text: Any) -> str:
    return str(text).encode("latin-1", "replace").decode("latin-1")


def _money(amount_minor: int, currency: str) -> str:
    return f"{amount_minor / 100:,.2f} {currency.upper()}"


class _Pdf(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=7)
        self.set_text_color(110)
        self.cell(0, 5, f"Provenance certificate - page {self.page_no()}", align="C")


def render_pdf(certificate: dict[str, Any], *, items_max: int, json_url: str) -> bytes:
    """The PDF of `certificate`; its item table only when it holds at most `items_max` records."""
    order = certificate["order"]
    seal = certificate["seal"]
    ledger = certificate["ledger"]
    signature = certificate["signature"]
    pdf = _Pdf(format="A4")
    pdf.set_title(_latin1(f"Provenance certificate, order {order['id']}"))
    pdf.set_creator("marketplace")
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(
        0,
        10,
        _latin1(f"Provenance certificate - order {order['id']}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font("Helvetica", size=9)
    pdf.multi_cell(
        0,
        4.5,
        "Every item of this dataset, the terms it was licensed under and the consent state at "
        "the moment of sale are recorded in the platform's append-only, signed ledger. The JSON "
        "certificate proves it; this page summarises it.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    counts = certificate.get("counts", {})
    licences = (
        ", ".join(f"{n:,} {_LICENCE_NAMES.get(kind, kind)}" for kind, n in counts.items()) or "none"
    )
    attribution = certificate.get("obligations", {}).get("attribution_required", 0)
    rows = [
        ("Order", f"{order['id']} (reference {order['reference']})"),
        ("Organization", order["organization"]["name"]),
        ("Paid", order["paid_at"]),
        ("Intended use", ", ".join(u.replace("_", " ") for u in order["intended_uses"])),
        ("Total", _money(order["total_minor"], order["currency"])),
        ("Items delivered", f"{seal['item_count'] - seal['missing_count']:,}: {licences}"),
        ("Items missing", f"{seal['missing_count']:,} (not charged; listed in the JSON)"),
        (
            "Obligations",
            f"Attribution required for {attribution:,} items"
            if attribution
            else "None beyond the licence terms",
        ),
        ("Items root", seal["items_root"]),
        ("Sealed in entry", f"{seal['seq']} (dataset.certified)"),
        ("Tree size at purchase", f"{certificate['tree_size_at_purchase']:,}"),
        ("Signature key", signature["key"]),
    ]
    for label, value in rows:
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(42, 5.5, _latin1(label))
        pdf.set_font("Helvetica", size=9)
        pdf.multi_cell(0, 5.5, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 6, "Ledger checkpoint (C2SP signed note)", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Courier", size=7.5)
    pdf.multi_cell(
        0, 3.6, _latin1(ledger["checkpoint"].replace("\u2014", "--")), new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font("Helvetica", size=8)
    pdf.multi_cell(
        0, 4, _latin1(f"Log key: {ledger['verifier_key']}"), new_x="LMARGIN", new_y="NEXT"
    )
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 6, "How to verify", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8.5)
    pdf.multi_cell(
        0,
        4.3,
        _latin1(
            "Upload the JSON certificate at /verify, or offline: download /verify/verifier.py "
            "(needs Python 3.11+ and the 'cryptography' package) and run it in the package "
            f"folder:\n{certificate['verify']['command']}\n"
            "It checks the signature, the checkpoint, every inclusion proof, the items root "
            "sealed in the ledger and, with --package, every image's SHA-256."
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    _appendix(pdf, certificate, items_max=items_max, json_url=json_url)
    return bytes(pdf.output())


def _appendix(pdf: FPDF, certificate: dict[str, Any], *, items_max: int, json_url: str) -> None:
    items = certificate.get("items", [])
    missing = certificate.get("missing", [])
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Appendix: items", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8.5)
    if len(items) + len(missing) > items_max:
        pdf.multi_cell(
            0,
            4.5,
            _latin1(
                f"This order has {len(items) + len(missing):,} items, too many to list here. "
                f"Every item record is in the JSON certificate: {json_url}"
            ),
            new_x="LMARGIN",
            new_y="NEXT",
        )
        return
    widths = (18, 16, 24, 14, 18, 100)
    headers = ("Key", "Item", "Licence", "Terms", "Sold entry", "SHA-256 delivered / reason")
    pdf.set_font("Helvetica", "B", 7.5)
    for width, header in zip(widths, headers, strict=True):
        pdf.cell(width, 5, header, border="B")
    pdf.ln()
    pdf.set_font("Courier", size=6.5)
    for entry in [*items, *missing]:
        record = entry["record"]
        cells = (
            record["key"],
            str(record["item"]),
            record["licence"],
            "-" if record["terms"] is None else str(record["terms"]),
            str(record["sold_seq"]),
            record["sha256"] or f"missing: {record['missing_reason']}"[:70],
        )
        for width, value in zip(widths, cells, strict=True):
            pdf.cell(width, 4, _latin1(value))
        pdf.ln()
