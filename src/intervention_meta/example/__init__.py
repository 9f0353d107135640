"""The simulated example literature shipped in data/raw (literature)."""
