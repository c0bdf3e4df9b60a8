"""Dataset compliance: a buyer's existing manifest classified row by row against the opt-out
registry, machine-readable reservations and the catalog (opted out, reserved, licensable here,
public domain, unknown), with evidence per row."""
