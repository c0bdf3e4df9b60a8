"""Near-duplicate search over 64-bit perceptual hashes: pure numpy, no Flask, no SQLAlchemy.

The catalog's "similar works" and the dataset compliance check (against the opt-out registry's
pHashes) build the same index from (id, pHash) pairs; see `index.PHashIndex`.
"""
