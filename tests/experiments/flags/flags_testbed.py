"""Where the flagd test bed lives, and a small Gherkin reader for its `.feature` files.

The test bed (https://github.com/open-feature/flagd-testbed) is not part of the
repository: tests read it from `../shared/conformance/flagd-testbed/` next to the
project and skip when it is absent. The reader understands what its features use:
tags, Feature / Background / Scenario / Scenario Outline, Examples tables (with
their own tags), steps with a data table, and `#` comments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
TESTBED = PROJECT_ROOT.parent / "shared" / "conformance" / "flagd-testbed"
TESTBED_FLAGS = TESTBED / "flags" / "testkit-flags.json"
TESTBED_GHERKIN = TESTBED / "gherkin"
SHIPPED_FLAGS = PROJECT_ROOT / "experiments" / "defaults" / "flags.json"
SKIP_REASON = f"the flagd test bed is not checked out at {TESTBED}"

_STEP = re.compile(r"^(Given|When|Then|And|But|\*)\s+(.*)$")
_SCENARIO = re.compile(r"^(Scenario Outline|Scenario Template|Scenario|Example):\s*(.*)$")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')

Table = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Step:
    text: str
    table: Table = ()

    def strings(self) -> list[str]:
        """The quoted arguments of the step, with `\\"` unescaped."""
        return [m.replace('\\"', '"') for m in _QUOTED.findall(self.text)]

    @property
    def pattern(self) -> str:
        """The step text with every quoted argument replaced by `{}`."""
        return _QUOTED.sub("{}", self.text)


@dataclass(frozen=True)
class Scenario:
    feature: str
    name: str
    line: int
    tags: frozenset[str]
    steps: tuple[Step, ...]

    @property
    def id(self) -> str:
        return f"{self.feature}:{self.line}:{self.name}"


@dataclass
class _Examples:
    tags: frozenset[str]
    name: str
    rows: list[tuple[str, ...]]


@dataclass
class _Block:
    name: str
    line: int
    tags: frozenset[str]
    steps: list[tuple[str, list[tuple[str, ...]]]]
    examples: list[_Examples]


def _cells(line: str) -> tuple[str, ...]:
    """The cells of a `| a | b |` row; `\\|`, `\\\\` and `\\n` are cell escapes."""
    cells: list[str] = []
    current: list[str] = []
    chars = iter(line.strip()[1:])
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            current.append({"|": "|", "\\": "\\", "n": "\n"}.get(nxt, "\\" + nxt))
        elif char == "|":
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    return tuple(cells)


def _substitute(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace(f"<{name}>", value)
    return text


def _expand(
    feature: str, tags: frozenset[str], background: list[Step], block: _Block
) -> list[Scenario]:
    def steps(values: dict[str, str]) -> tuple[Step, ...]:
        own = tuple(
            Step(
                _substitute(text, values),
                tuple(tuple(_substitute(c, values) for c in row) for row in rows),
            )
            for text, rows in block.steps
        )
        return (*background, *own)

    base_tags = tags | block.tags
    if not block.examples:
        return [Scenario(feature, block.name, block.line, base_tags, steps({}))]
    scenarios = []
    for examples in block.examples:
        header, *rows = examples.rows
        for number, row in enumerate(rows, start=1):
            values = dict(zip(header, row, strict=True))
            label = ", ".join(f"{k}={v}" for k, v in values.items())
            name = f"{block.name} [{examples.name or 'examples'} #{number}: {label}]"
            scenarios.append(
                Scenario(feature, name, block.line, base_tags | examples.tags, steps(values))
            )
    return scenarios


def parse_feature(text: str, feature: str) -> list[Scenario]:
    """Every scenario of a feature file, outlines expanded into one scenario per example row."""
    tags: frozenset[str] = frozenset()
    feature_tags: frozenset[str] = frozenset()
    pending: set[str] = set()
    background: list[Step] = []
    blocks: list[_Block] = []
    target: list[tuple[str, list[tuple[str, ...]]]] | None = None
    examples: _Examples | None = None
    in_background = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            pending.update(tag for tag in line.split() if tag.startswith("@"))
            continue
        if line.startswith("Feature:"):
            feature_tags, pending = frozenset(pending), set()
            continue
        if line.startswith("Background:"):
            in_background, examples, target = True, None, []
            continue
        if match := _SCENARIO.match(line):
            if in_background and target is not None:
                background = [Step(t, tuple(r)) for t, r in target]
            in_background, examples = False, None
            blocks.append(_Block(match.group(2), number, frozenset(pending), [], []))
            pending, target = set(), blocks[-1].steps
            continue
        if line.startswith("Examples:") or line.startswith("Scenarios:"):
            examples = _Examples(frozenset(pending), line.split(":", 1)[1].strip(), [])
            blocks[-1].examples.append(examples)
            pending = set()
            continue
        if line.startswith("|"):
            if examples is not None:
                examples.rows.append(_cells(line))
            elif target:
                target[-1][1].append(_cells(line))
            continue
        if (step := _STEP.match(line)) and target is not None:
            target.append((step.group(2), []))
            continue
        raise ValueError(f"{feature}:{number}: cannot read {line!r}")
    tags = feature_tags
    return [scenario for block in blocks for scenario in _expand(feature, tags, background, block)]


def load_scenarios(folder: Path = TESTBED_GHERKIN) -> list[Scenario]:
    """The scenarios of every `.feature` file in `folder`, in file order."""
    scenarios: list[Scenario] = []
    for path in sorted(folder.glob("*.feature")):
        scenarios.extend(parse_feature(path.read_text(encoding="utf-8"), path.name))
    return scenarios
