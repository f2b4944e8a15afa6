"""The analysis package stays pure: no pandas, HTTP or service code at import time."""

from __future__ import annotations

import subprocess
import sys

import analysis


def test_import_pulls_in_no_pandas_fastapi_or_service() -> None:
    code = (
        "import sys, analysis; "
        "print(sorted(m for m in ('pandas', 'fastapi', 'service', 'redis') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_exported_name_exists() -> None:
    assert all(hasattr(analysis, name) for name in analysis.__all__)
    assert analysis.__all__ == sorted(analysis.__all__, key=lambda n: (not n.isupper(), n))
