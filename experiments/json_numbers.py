"""The integers voxroute takes from JSON: those a JSON number carries exactly.

JSON parsers that read numbers as IEEE-754 doubles (JavaScript, the flagd
providers, the analysis' float columns) keep integers exact up to 2**53 in
magnitude; orjson, which writes every stored document and every response,
refuses integers beyond 64 bits. Inputs are held to the smaller range, so a
value that was accepted can always be written and read back.
"""

from __future__ import annotations

MAX_EXACT_INT = 2**53


def is_exact_int(value: int) -> bool:
    return -MAX_EXACT_INT <= value <= MAX_EXACT_INT
