"""reasonlab: reproducible DVC pipelines for two papers on small reasoning models (see the README)."""
