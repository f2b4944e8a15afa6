"""The live flag set: a versioned, audited store shared by every replica, or a watched file.

- `FlagManager` reads, changes, pushes and rolls back flags; every change is
  validated as a whole flag set before it is published (`plan_change`).
- `RedisFlagStore` keeps the set in Redis (keys under the hash tag `{flags}`);
  `InMemoryFlagStore` is its fake; `FileFlagStore` the read-only store of file mode.
- `FlagSync` keeps a process's provider on the store's newest set (pub/sub plus a
  periodic re-read); `FlagFileWatcher` does it for a flag file.
- `weight_changes(entries)` reads the audit for the analysis.
"""

from ..flags.checks import ValidatedFlagSet, store_flag_version, validate_flag_set
from .audit import AuditEntry, WeightChange, weight_changes
from .diff import DiffOp, json_diff
from .documents import (
    FlagSetDraft,
    StoredFlag,
    StoredFlagSet,
    canonical,
    draft_from_flagd,
    merge_flagd,
)
from .file_watch import FlagFileWatcher, load_flag_file
from .keys import FlagStoreKeys
from .manager import ChangeResult, FlagManager
from .memory import FileFlagStore, InMemoryFlagStore
from .plan import ChangePlan, FlagChange, plan_change
from .protocols import ChangeFeed, Commit, FlagStore
from .redis_store import RedisFlagStore
from .sync import FlagSync
from .views import flag_view, list_view

__all__ = [
    "AuditEntry",
    "ChangeFeed",
    "ChangePlan",
    "ChangeResult",
    "Commit",
    "DiffOp",
    "FileFlagStore",
    "FlagChange",
    "FlagFileWatcher",
    "FlagManager",
    "FlagSetDraft",
    "FlagStore",
    "FlagStoreKeys",
    "FlagSync",
    "InMemoryFlagStore",
    "RedisFlagStore",
    "StoredFlag",
    "StoredFlagSet",
    "ValidatedFlagSet",
    "WeightChange",
    "canonical",
    "draft_from_flagd",
    "flag_view",
    "json_diff",
    "list_view",
    "load_flag_file",
    "merge_flagd",
    "plan_change",
    "store_flag_version",
    "validate_flag_set",
    "weight_changes",
]
