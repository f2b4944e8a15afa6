"""The shipped notebook runs, cell by cell, on data created through the HTTP API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from test_experiments_api import _populate

from service.settings import Settings

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "cohort_analysis.ipynb"


async def test_the_notebook_runs_on_api_data(
    client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _populate(client)
    assert settings.redis_url is not None
    monkeypatch.setenv("VOXROUTE_REDIS_URL", settings.redis_url)
    monkeypatch.setenv("VOXROUTE_KEY_PREFIX", settings.key_prefix)
    notebook = json.loads(NOTEBOOK.read_text())
    namespace: dict[str, object] = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), namespace)  # noqa: S102
    frame = namespace["frame"]
    assert len(frame) > 0  # type: ignore[arg-type]
    assert "deepgram-nova-3" in namespace["result"].to_text()  # type: ignore[attr-defined]
