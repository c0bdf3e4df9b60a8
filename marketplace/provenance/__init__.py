"""Provenance pages: each ledger entry told in words, with its proof one click away."""
