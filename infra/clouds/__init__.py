"""Per-cloud infrastructure behind one interface (see base.py)."""
