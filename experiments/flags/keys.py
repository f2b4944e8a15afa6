"""The `voxroute.*` keys voxroute adds to a resolution's flag metadata."""

from __future__ import annotations

FLAG_VERSION_KEY = "voxroute.flag_version"
"""Short content hash of the flag definition (after `$ref` expansion)."""
SPLIT_ID_KEY = "voxroute.split_id"
"""Stable id of the `fractional` split that chose the variant."""
SPLIT_WEIGHTS_KEY = "voxroute.split_weights"
"""Compact JSON object variant -> weight of that split, in declaration order."""
BUCKET_UNIT_KEY = "voxroute.bucket_unit"
"""What the split buckets: `targetingKey`, or the context variables of its bucket expression."""
BUCKET_KEY_KEY = "voxroute.bucket_key"
"""The exact string that was hashed."""
