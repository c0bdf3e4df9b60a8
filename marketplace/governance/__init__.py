"""Governance: claims against works and stock, takedowns, recalls to buyers, the audit log."""
