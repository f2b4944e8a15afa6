"""Loading flag files: JSON and YAML, and errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.errors import FlagValidationError
from experiments.flags import DEFAULT_FLAGS_PATH, load_flag_set, parse_flag_text
from experiments.flags.loader import format_of

YAML_FLAGS = """
metadata:
  flagSetId: yaml-demo
$evaluators:
  eu:
    "==": [{var: region}, eu]
flags:
  voice:
    state: ENABLED
    variants: {pipeline: pipeline, s2s: s2s}
    defaultVariant: pipeline
    targeting:
      if: [{$ref: eu}, s2s, null]
"""


def test_shipped_json_file_loads_with_its_path_as_source() -> None:
    flags = load_flag_set(DEFAULT_FLAGS_PATH)
    assert flags.source == str(DEFAULT_FLAGS_PATH)
    assert flags.metadata["flagSetId"] == "voxroute-defaults"


def test_yaml_file_loads_like_json(tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(YAML_FLAGS, encoding="utf-8")
    flags = load_flag_set(path)
    assert flags.resolve("voice", "s-1", {"region": "eu"}).variant == "s2s"
    assert flags.resolve("voice", "s-1", {"region": "us"}).variant == "pipeline"


@pytest.mark.parametrize(
    ("name", "fmt"), [("f.yaml", "yaml"), ("f.YML", "yaml"), ("f.json", "json"), ("f", "json")]
)
def test_format_follows_the_file_suffix(name: str, fmt: str) -> None:
    assert format_of(name) == fmt


@pytest.mark.parametrize(
    ("text", "fmt", "problem"),
    [
        ('{"flags": ', "json", "not valid JSON"),
        ("flags: [", "yaml", "not valid YAML"),
        (
            "flags:\n  f:\n    state: ENABLED\n    variants: {a: 2024-01-01}\n",
            "yaml",
            "not a JSON value",
        ),
        (
            "flags:\n  f:\n    state: ENABLED\n    variants: {1: a}\n",
            "yaml",
            "keys must be strings",
        ),
    ],
)
def test_bad_text_is_a_validation_error_naming_the_source(
    text: str, fmt: str, problem: str
) -> None:
    with pytest.raises(FlagValidationError) as caught:
        parse_flag_text(text, "yaml" if fmt == "yaml" else "json", source="mine.txt")
    assert caught.value.source == "mine.txt"
    assert problem in caught.value.problem


def test_missing_file_is_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(FlagValidationError) as caught:
        load_flag_set(path)
    assert caught.value.source == str(path)
    assert "cannot read the flag file" in caught.value.problem


def test_validation_error_of_a_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"flags": {"f": {"state": "ON", "variants": {"a": 1}}}}', encoding="utf-8")
    with pytest.raises(FlagValidationError) as caught:
        load_flag_set(path)
    assert (caught.value.source, caught.value.flag_key, caught.value.path) == (
        str(path),
        "f",
        "/state",
    )
