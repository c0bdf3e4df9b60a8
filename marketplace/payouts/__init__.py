"""Payouts: artists' connected accounts, payout runs, reversals after refunds, statements."""
