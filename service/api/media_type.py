"""The media type of a JSON request body: `application/json` or `application/<x>+json`.

A request with a body of another type (`text/plain`, the form type that `curl -d`
sends) is a 415 `unsupported_media_type`: the body is not read. A request with no
body and no `Content-Type` passes, so that validation names the missing body. A
`charset` parameter other than UTF-8 is refused too (JSON is UTF-8, RFC 8259 §8.1);
other parameters are ignored. The check reads the ASGI header list once: the hot
paths pay for a scan of the headers, not for parsing (a bare `application/json`,
what clients send, is taken as it is).
"""

from __future__ import annotations

from typing import Any

from starlette.types import Scope

EXPECTED = ("application/json", "application/*+json")
_UTF8 = frozenset({"utf-8", "utf8"})
_SHOWN = 100  # characters of a refused Content-Type echoed in the error


class UnsupportedMediaTypeError(Exception):
    """The body is not declared as JSON; a 415 (see `service.errors`)."""

    def __init__(self, content_type: str | None, problem: str) -> None:
        self.content_type = content_type
        self.message = problem
        super().__init__(problem)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": "unsupported_media_type",
            "message": self.message,
            "context": {"content_type": self.content_type, "expected": list(EXPECTED)},
        }


def require_json(scope: Scope) -> None:
    """Raise `UnsupportedMediaTypeError` unless the request's body is declared as JSON
    (or there is no body and no `Content-Type`)."""
    content_type: bytes | None = None
    has_body = False
    for name, value in scope["headers"]:
        if name == b"content-type":
            if value == b"application/json":
                return
            content_type = value
        elif name == b"content-length":
            has_body = value.strip() != b"0"
        elif name == b"transfer-encoding":
            has_body = True
    if content_type is None:
        if has_body:
            raise UnsupportedMediaTypeError(
                None,
                "Content-Type is missing: send the JSON body with Content-Type: application/json",
            )
        return
    _check(content_type.decode("latin-1"))


def _check(content_type: str) -> None:
    media_type, *parameters = content_type.split(";")
    kind, _, subtype = media_type.strip().lower().partition("/")
    shown = content_type[:_SHOWN]
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        raise UnsupportedMediaTypeError(
            shown,
            f"Content-Type {shown!r} is not JSON: send the body as application/json "
            "(or application/<type>+json)",
        )
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in _UTF8:
            raise UnsupportedMediaTypeError(
                shown,
                f"Content-Type {shown!r}: JSON bodies are UTF-8; send charset=utf-8 or no charset",
            )
