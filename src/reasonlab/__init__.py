"""reasonlab: reproducible DVC pipelines for two papers on small reasoning models (see the README)."""

from . import numerics as _numerics

# Before anything imports torch: one CPU code path on every machine (reasonlab.numerics; opt out with
# REASONLAB_NUMERICS=native).
_numerics.pin()
