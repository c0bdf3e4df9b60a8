"""Provenance certificates: what an order can prove about every item it delivered, signed."""
