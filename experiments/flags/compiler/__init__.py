"""Compiling flagd targeting rules (JsonLogic plus flagd's operators) into Python closures.

`compile_targeting` is the entry point; the evaluator calls it once per flag.
"""

from __future__ import annotations

from .rules import FlagScope, Tail, TargetingParseError, compile_targeting

__all__ = ["FlagScope", "Tail", "TargetingParseError", "compile_targeting"]
