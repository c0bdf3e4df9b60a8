"""Machine-readable TDM reservations (TDMRep, ai.txt, robots.txt) kept as records per domain."""
