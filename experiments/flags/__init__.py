"""flagd flag sets for voxroute: parse, validate, compile, evaluate, serve through OpenFeature.

- `load_flag_set(path)` / `parse_flag_text(text, fmt)` / `compile_flag_set(data)`
  give a `CompiledFlagSet` (or raise `FlagValidationError`).
- `CompiledFlagSet.resolve(flag_key, targeting_key, attributes)` gives a `Resolution`.
- `VoxrouteProvider(flag_set)` is the OpenFeature provider; `update()` hot-swaps the set.
- `validate_flag_set(document, catalog)` checks a whole set (flagd rules, catalog, splits).

Layout: `compiler/` compiles targeting rules, `evaluator.py` resolves flags,
`fractional.py` buckets, `provider.py` / `client.py` are the OpenFeature side
(`client.py` is imported as `experiments.flags.client`: it needs the router, which
needs `keys.py`), `loader.py` reads files, `checks.py` holds the flag-set checks.
"""

from __future__ import annotations

from .checks import (
    FlagWarning,
    ValidatedFlagSet,
    check_flags_against_catalog,
    validate_flag_set,
)
from .evaluator import CompiledFlag, CompiledFlagSet, Resolution
from .fractional import SplitInfo, bucket_hash
from .keys import (
    BUCKET_KEY_KEY,
    BUCKET_UNIT_KEY,
    FLAG_VERSION_KEY,
    SPLIT_ID_KEY,
    SPLIT_WEIGHTS_KEY,
)
from .loader import (
    DEFAULT_FLAGS_PATH,
    compile_flag_set,
    load_default_flag_set,
    load_flag_set,
    parse_flag_text,
)
from .model import FlagDefinition, FlagSetDefinition, parse_flag_set
from .provider import ChangeListener, VoxrouteProvider

__all__ = [
    "BUCKET_KEY_KEY",
    "BUCKET_UNIT_KEY",
    "DEFAULT_FLAGS_PATH",
    "FLAG_VERSION_KEY",
    "SPLIT_ID_KEY",
    "SPLIT_WEIGHTS_KEY",
    "ChangeListener",
    "CompiledFlag",
    "CompiledFlagSet",
    "FlagDefinition",
    "FlagSetDefinition",
    "FlagWarning",
    "Resolution",
    "SplitInfo",
    "ValidatedFlagSet",
    "VoxrouteProvider",
    "bucket_hash",
    "check_flags_against_catalog",
    "compile_flag_set",
    "load_default_flag_set",
    "load_flag_set",
    "parse_flag_set",
    "parse_flag_text",
    "validate_flag_set",
]
