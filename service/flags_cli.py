"""`voxroute flags ...`: manage the flags of a running voxroute server over HTTP.

The server is `--url` (or `VOXROUTE_URL`, default http://127.0.0.1:8000); the admin
token is `VOXROUTE_ADMIN_TOKEN`. Output is a readable table (`--json` prints the
server's JSON). Exit status: 0 done, 1 refused by the server or unreachable (the
reason is printed), 2 bad local input.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from experiments.errors import ExperimentError
from experiments.flag_store import merge_flagd
from experiments.flags.loader import decode, format_of

DEFAULT_URL = "http://127.0.0.1:8000"
Command = Callable[["FlagsClient", argparse.Namespace], dict[str, Any]]


class ServerError(Exception):
    """The server refused the request (status and its error message) or was unreachable."""


class FlagsClient:
    """The /v1/flags endpoints; `transport` lets tests talk to an app in process."""

    def __init__(
        self, url: str, token: str | None, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.url = url
        self._http = httpx.Client(base_url=url, headers=headers, transport=transport, timeout=10)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerError(f"cannot reach voxroute at {self.url}: {exc}") from exc
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400:
            message = body.get("error", {}).get("message") or response.text
            raise ServerError(f"{response.status_code}: {message}")
        return body

    def write(self, method: str, path: str, dry_run: bool, **kwargs: Any) -> dict[str, Any]:
        params = {**kwargs.pop("params", {}), **({"dry_run": "true"} if dry_run else {})}
        return self.request(method, path, params=params, **kwargs)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns, two spaces apart, headers in capitals."""
    cells = [[str(h).upper() for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _weights(weights: dict[str, int]) -> str:
    return " ".join(f"{variant}={weight}" for variant, weight in weights.items())


def _splits(splits: list[dict[str, Any]]) -> str:
    return "; ".join(_weights(split["weights"]) for split in splits) or "-"


def _diff_lines(diff: list[dict[str, Any]]) -> list[str]:
    def short(value: Any) -> str:
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 40 else text[:37] + "..."

    lines = []
    for op in diff:
        if op["op"] == "add":
            lines.append(f"+ {op['path']}: {short(op['new'])}")
        elif op["op"] == "remove":
            lines.append(f"- {op['path']}")
        else:
            lines.append(f"{op['path']}: {short(op['old'])} -> {short(op['new'])}")
    return lines or ["(no change in the document)"]


def render_list(body: dict[str, Any]) -> str:
    rows = [
        [f["key"], f["version"], f["state"], f["defaultVariant"] or "-", _splits(f["splits"])]
        for f in body["flags"]
    ]
    head = f"flag set version {body['set_version']} ({body['store']})"
    return head + "\n" + table(["flag", "version", "state", "default", "splits"], rows)


def render_flag(body: dict[str, Any]) -> str:
    definition = body["definition"]
    parts = [
        f"flag {body['key']}  version {body['version']} (flag set {body['set_version']})",
        f"state {definition.get('state')}, default variant {definition.get('defaultVariant')}",
        "",
        table(
            ["variant", "value"], [[k, json.dumps(v)] for k, v in definition["variants"].items()]
        ),
    ]
    if body["splits"]:
        rows = [
            [s["id"], s["path"], s["bucket_unit"], _weights(s["weights"])] for s in body["splits"]
        ]
        parts += ["", table(["split", "path", "unit", "weights"], rows)]
    if definition.get("targeting") is not None:
        parts += ["", "targeting:", json.dumps(definition["targeting"], indent=2)]
    return "\n".join(parts)


def render_change(body: dict[str, Any]) -> str:
    if not body["valid"]:
        error = body["error"] or {}
        return f"invalid (nothing published): {error.get('message', '')}"
    if body["dry_run"]:
        head = f"dry run: nothing published (flag set version {body['set_version']})"
    elif body["published"]:
        head = f"published: flag set version {body['base_set_version']} -> {body['set_version']}"
    else:
        head = f"no change (flag set version {body['set_version']})"
    rows: list[list[object]] = []
    for change in body["changes"]:
        lines = _diff_lines(change["diff"])
        versions = f"{change['old_version']} -> {change['new_version']}"
        rows.append([change["flag_key"], versions, lines[0]])
        rows += [["", "", line] for line in lines[1:]]
    parts = [head] + ([table(["flag", "version", "change"], rows)] if rows else [])
    parts += [f"warning: {warning}" for warning in dict.fromkeys(body["warnings"])]
    if body["dry_run"] and body["reason_required"]:
        parts.append(f"note: publishing needs --reason ({', '.join(body['reason_required'])})")
    return "\n".join(parts)


def render_history(body: dict[str, Any]) -> str:
    rows: list[list[object]] = []
    for entry in body["entries"]:
        when = datetime.fromtimestamp(entry["ts_ms"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines = _diff_lines(entry["diff"]) if entry["action"] != "seed" else ["(first version)"]
        rows.append([entry["new_version"], when, entry["author"], entry["action"],
                     entry["reason"] or "-", lines[0]])  # fmt: skip
        rows += [["", "", "", "", "", line] for line in lines[1:]]
    headers = ["version", "when (utc)", "who", "action", "reason", "change"]
    return f"history of {body['flag_key']} (newest first)\n" + table(headers, rows)


def _weight_pair(item: str) -> tuple[str, int]:
    variant, sep, weight = item.partition("=")
    if not sep or not variant or not weight.isdigit():
        raise argparse.ArgumentTypeError(f"{item!r}: expected VARIANT=WEIGHT (a whole number)")
    return variant, int(weight)


def _read_flag_files(paths: Sequence[Path]) -> dict[str, Any]:
    documents = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ExperimentError(f"cannot read {path}: {exc}") from exc
        documents.append((str(path), decode(text, format_of(path), source=str(path))))
    return merge_flagd(documents)


def _list(client: FlagsClient, args: argparse.Namespace) -> dict[str, Any]:
    return client.request("GET", "/v1/flags")


def _show(client: FlagsClient, args: argparse.Namespace) -> dict[str, Any]:
    return client.request("GET", f"/v1/flags/{args.key}")


def _patch(body: dict[str, Any]) -> Command:
    def run(client: FlagsClient, args: argparse.Namespace) -> dict[str, Any]:
        payload = {**body, "reason": args.reason}
        if getattr(args, "weights", None):
            payload["weights"] = dict(args.weights)
            payload["split"] = args.split
        return client.write("PATCH", f"/v1/flags/{args.key}", args.dry_run, json=payload)

    return run


def _push(client: FlagsClient, args: argparse.Namespace) -> dict[str, Any]:
    payload = {"flag_set": _read_flag_files(args.files), "reason": args.reason}
    return client.write("POST", "/v1/flags", args.dry_run, json=payload)


def _history(client: FlagsClient, args: argparse.Namespace) -> dict[str, Any]:
    return client.request("GET", f"/v1/flags/{args.key}/history", params={"limit": args.limit})


def _rollback(client: FlagsClient, args: argparse.Namespace) -> dict[str, Any]:
    payload = {"to_version": args.to_version, "reason": args.reason}
    return client.write("POST", f"/v1/flags/{args.key}/rollback", args.dry_run, json=payload)


_RENDER: dict[str, Callable[[dict[str, Any]], str]] = {
    "list": render_list,
    "show": render_flag,
    "history": render_history,
}


def run(args: argparse.Namespace, *, transport: httpx.BaseTransport | None = None) -> int:
    """Run one `voxroute flags` command; prints its table (or JSON) and returns the status."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per request
    client = FlagsClient(args.url, os.environ.get("VOXROUTE_ADMIN_TOKEN"), transport=transport)
    try:
        body = args.command(client, args)
    except ServerError as exc:
        print(f"voxroute flags: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    render = _RENDER.get(args.flags_command, render_change)
    print(json.dumps(body, indent=2) if args.json else render(body))
    return 0 if body.get("valid", True) else 1


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", default=os.environ.get("VOXROUTE_URL", DEFAULT_URL),
        help="the voxroute server (VOXROUTE_URL; default %(default)s)",
    )  # fmt: skip
    common.add_argument("--json", action="store_true", help="print the server's JSON")
    return common


def _writes(parser: argparse.ArgumentParser, *, reason_required: bool = False) -> None:
    parser.add_argument(
        "--reason", required=reason_required, default="",
        help="why (the audit keeps it; required for a flag with a running split)",
    )  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="show the diff; publish nothing")


def add_flags_parser(sub: Any) -> None:
    """Register `voxroute flags ...` on the `voxroute` command's subparsers."""
    flags = sub.add_parser("flags", help="manage the flags of a running server (admin token)")
    flags.set_defaults(run=run)
    commands = flags.add_subparsers(required=True, dest="flags_command", metavar="command")
    common = _common()

    def command(name: str, helptext: str, fn: Command) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=helptext, parents=[common])
        parser.set_defaults(command=fn)
        return parser

    command("list", "every flag: version, state, default, split weights", _list)
    command("show", "one flag: variants, splits, targeting", _show).add_argument("key")
    weights = command("set-weights", "change a split's weights", _patch({}))
    weights.add_argument("key")
    weights.add_argument("weights", nargs="+", type=_weight_pair, metavar="VARIANT=WEIGHT")
    weights.add_argument("--split", help="the split's id or path, when the flag has several")
    _writes(weights)
    for name, state in (("disable", "DISABLED"), ("enable", "ENABLED")):
        toggle = command(name, f"set the flag's state to {state}", _patch({"state": state}))
        toggle.add_argument("key")
        _writes(toggle)
    push = command("push", "validate, then publish a whole flag set from files", _push)
    push.add_argument("files", nargs="+", type=Path)
    _writes(push)
    history = command("history", "who changed the flag, when and why", _history)
    history.add_argument("key")
    history.add_argument("--limit", type=int, default=50)
    rollback = command("rollback", "restore an earlier version as a new version", _rollback)
    rollback.add_argument("key")
    rollback.add_argument("--to-version", type=int, required=True)
    _writes(rollback)
