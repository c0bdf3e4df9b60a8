"""Artists: profiles, works, versioned licence terms, consent signals."""
