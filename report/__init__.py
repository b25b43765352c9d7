"""The cloud comparison report (python -m report)."""
