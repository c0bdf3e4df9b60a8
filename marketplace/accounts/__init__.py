"""Accounts: users, roles, log-in, email verification, password reset, API tokens."""
