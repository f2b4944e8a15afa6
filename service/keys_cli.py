"""`voxroute keys create|list|revoke`: API keys in the Redis of this installation
(`VOXROUTE_REDIS_URL`, else the embedded Redis of the data folder, the running
server's when one runs). A new token is printed once and never again; `list`
shows names, roles, tenants and use, never a token."""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import orjson

from experiments.access import RedisKeyStore, Role, StoredKey

from .api_keys import open_key_store
from .embedded_redis import attach_or_start
from .settings import Settings


def add_keys_parser(sub: Any) -> None:
    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    commands = keys.add_subparsers(required=True, metavar="action")
    create = commands.add_parser("create", help="make a key and print its token once")
    create.add_argument("--name", required=True, help="unique name, shown in lists and audits")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--tenant", help="the tenant a tenant key acts for (required with it)")
    create.set_defaults(run=_create)
    listing = commands.add_parser("list", help="every stored key (never a token)")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    listing.set_defaults(run=_list)
    revoke = commands.add_parser("revoke", help="delete a key; refused everywhere within 1 s")
    revoke.add_argument("name")
    revoke.set_defaults(run=_revoke)


def _with_store(action: Any) -> Any:
    settings = Settings()
    with ExitStack() as stack:
        url = settings.redis_url or attach_or_start(settings.data_dir / "redis", stack)

        async def run() -> Any:
            store = open_key_store(settings, url)
            try:
                await store.check_secret()
                return await action(store)
            finally:
                await store.aclose()

        return asyncio.run(run())


def _create(args: argparse.Namespace) -> int:
    role = Role(args.role)
    if (role is Role.TENANT) != (args.tenant is not None):
        sys.stderr.write("voxroute keys create: --tenant goes with --role tenant, and only there\n")
        return 2
    token = _with_store(lambda store: store.create(args.name, role, args.tenant))
    sys.stdout.write(f"{token}\n")
    sys.stderr.write(
        f"key {args.name!r} ({role.value}{', tenant ' + args.tenant if args.tenant else ''}) "
        "created: the token above is shown only now; send it as `Authorization: Bearer <token>`\n"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    keys: list[StoredKey] = _with_store(RedisKeyStore.list)
    rows = [_row(key) for key in keys]
    if args.json:
        sys.stdout.writelines(orjson.dumps(row).decode() + "\n" for row in rows)
        return 0
    columns = ("name", "role", "tenant_id", "created", "last_used")
    widths = [max([len(c), *(len(str(r[c] or "-")) for r in rows)]) for c in columns]
    for line in [dict(zip(columns, columns, strict=True)), *rows]:
        cells = (str(line[c] or "-").ljust(w) for c, w in zip(columns, widths, strict=True))
        sys.stdout.write("  ".join(cells).rstrip() + "\n")
    return 0


def _row(key: StoredKey) -> dict[str, Any]:
    return {
        "name": key.name,
        "role": key.role.value,
        "tenant_id": key.tenant_id,
        "created": _when(key.created_ms),
        "last_used": _when(key.last_used_ms) if key.last_used_ms else None,
    }


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def _revoke(args: argparse.Namespace) -> int:
    if not _with_store(lambda store: store.revoke(args.name)):
        sys.stderr.write(f"voxroute keys revoke: no key named {args.name!r}\n")
        return 1
    sys.stderr.write(f"key {args.name!r} revoked\n")
    return 0
