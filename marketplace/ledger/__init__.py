"""The ledger: an RFC 6962 provenance log with C2SP checkpoints, and double-entry money.

This package's __init__ imports nothing, so the standalone verifier (`verify.py`, with
`merkle.py` and `note.py`) runs with the standard library and `cryptography` alone.
"""
