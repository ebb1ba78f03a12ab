"""Plot modules of scripts/plot.py: one module per kind of result."""
