"""Buyers: organization settings, members and API tokens (orders follow)."""
