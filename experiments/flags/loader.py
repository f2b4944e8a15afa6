"""Load flag sets from files or text (JSON or YAML) and compile them.

Flag sets use flagd's format (https://flagd.dev/reference/flag-definitions/); a
`.yaml` / `.yml` file is YAML, anything else JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import FlagValidationError
from .evaluator import CompiledFlagSet
from .model import parse_flag_set

Format = Literal["json", "yaml"]
DEFAULT_FLAGS_PATH = Path(__file__).resolve().parent.parent / "defaults" / "flags.json"


def format_of(path: str | Path) -> Format:
    """`yaml` for a `.yaml` / `.yml` file, else `json`."""
    return "yaml" if Path(path).suffix.lower() in (".yaml", ".yml") else "json"


def decode(text: str, fmt: Format = "json", *, source: str = "") -> Any:
    """Decode flag-set text; a syntax error is a `FlagValidationError` naming `source`."""
    try:
        if fmt == "yaml":
            return yaml.safe_load(text)
        return json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise FlagValidationError(f"not valid {fmt.upper()}: {exc}", source=source) from exc


def compile_flag_set(data: Any, *, source: str = "", strict: bool = True) -> CompiledFlagSet:
    """Validate and compile a decoded flag set (raises `FlagValidationError`)."""
    return CompiledFlagSet.from_definition(parse_flag_set(data, source=source, strict=strict))


def parse_flag_text(
    text: str, fmt: Format = "json", *, source: str = "", strict: bool = True
) -> CompiledFlagSet:
    """Decode, validate and compile flag-set text (raises `FlagValidationError`)."""
    return compile_flag_set(decode(text, fmt, source=source), source=source, strict=strict)


def load_flag_set(path: str | Path, *, strict: bool = True) -> CompiledFlagSet:
    """Read, validate and compile the flag set in `path` (raises `FlagValidationError`).

    `strict=False` accepts what flagd-core 1.0.0 accepts, letting malformed rules
    fail at evaluation as they do there (the flagd test bed relies on that).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlagValidationError(f"cannot read the flag file: {exc}", source=source) from exc
    return parse_flag_text(text, format_of(path), source=source, strict=strict)


def load_default_flag_set() -> CompiledFlagSet:
    """The flag set shipped with voxroute (`experiments/defaults/flags.json`)."""
    return load_flag_set(DEFAULT_FLAGS_PATH)
