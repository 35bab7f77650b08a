"""The Dataverse Web API `$batch` body (OData multipart/mixed), both ways: requests and responses.

A batch holds requests and change sets; a change set is all-or-nothing and answers with one response per
request, or one error for the whole set. Used by the Dataverse client, and by the fake server the tests
start, so both sides speak the same documented format (Web API "Execute batch operations").
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

CRLF = "\r\n"
_SAFE = "/?=&$(),'@:*-._~;!+%"  # '%': a caller's own escapes (an '&' inside a value) pass unchanged


@dataclass(slots=True)
class Op:
    method: str
    url: str  # relative to the API root: "cl_opportunities(cl_key='…')"
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ChangeSet:
    ops: list[Op]


@dataclass(slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


Item = Op | ChangeSet


def _http(op: Op, api: str, content_id: int | None) -> str:
    head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        head.append(f"Content-ID: {content_id}")
    lines = [f"{op.method} {api}{quote(op.url, safe=_SAFE)} HTTP/1.1"]
    headers = {"Accept": "application/json", **op.headers}
    if op.body is not None:
        headers["Content-Type"] = "application/json; type=entry"
    lines += [f"{k}: {v}" for k, v in headers.items()]
    body = json.dumps(op.body, separators=(",", ":"), default=str) if op.body is not None else ""
    return CRLF.join(head) + CRLF + CRLF + CRLF.join(lines) + CRLF + CRLF + body + CRLF


def encode_request(items: Sequence[Item], api: str) -> tuple[str, bytes]:
    """(Content-Type, body) of a $batch request; `api` is the absolute API root ending in '/'."""
    boundary = f"batch_{uuid.uuid4().hex}"
    parts = []
    for item in items:
        if isinstance(item, ChangeSet):
            inner = f"changeset_{uuid.uuid4().hex}"
            ops = "".join(f"--{inner}{CRLF}{_http(op, api, i + 1)}" for i, op in enumerate(item.ops))
            parts.append(f"--{boundary}{CRLF}Content-Type: multipart/mixed; boundary={inner}{CRLF}{CRLF}"
                         f"{ops}--{inner}--{CRLF}")
        else:
            parts.append(f"--{boundary}{CRLF}{_http(item, api, None)}")
    return f"multipart/mixed; boundary={boundary}", ("".join(parts) + f"--{boundary}--{CRLF}").encode()


def _boundary(content_type: str) -> str:
    for piece in content_type.split(";"):
        name, _, value = piece.strip().partition("=")
        if name.lower() == "boundary":
            return value.strip('"')
    raise ValueError(f"no boundary in {content_type!r}")


def _parts(body: str, boundary: str) -> list[str]:
    chunks = body.split(f"--{boundary}")
    return [c.lstrip(CRLF).lstrip("\n") for c in chunks[1:] if not c.startswith("--")]


def _headers(block: str) -> dict[str, str]:
    out = {}
    for line in block.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip().lower()] = value.strip()
    return out


def _split(text: str) -> tuple[str, str]:
    head, sep, rest = text.partition(CRLF + CRLF)
    if not sep:
        head, _, rest = text.partition("\n\n")
    return head, rest


def _http_message(part: str) -> tuple[str, dict[str, str], str]:
    """(start line, headers, body) of the application/http message inside one part."""
    _, message = _split(part)
    head, body = _split(message)
    lines = head.splitlines()
    return lines[0], _headers(CRLF.join(lines[1:])), body.rstrip("\r\n")


def decode_request(content_type: str, body: bytes, api_path: str) -> list[Item]:
    """The requests of a $batch body (the fake server's side); urls made relative to `api_path`."""
    items: list[Item] = []
    for part in _parts(body.decode(), _boundary(content_type)):
        head, _ = _split(part)
        headers = _headers(head)
        if headers.get("content-type", "").startswith("multipart/mixed"):
            inner = _boundary(headers["content-type"])
            items.append(ChangeSet([_op(p, api_path) for p in _parts(part[len(head):].strip(CRLF), inner)]))
        else:
            items.append(_op(part, api_path))
    return items


def _op(part: str, api_path: str) -> Op:
    start, headers, body = _http_message(part)
    method, url = start.rsplit(" ", 1)[0].split(" ", 1)  # the url stays percent-encoded: its reader decodes
    path = url.split("://", 1)[-1]
    path = path[path.index("/"):] if "://" in url else path
    if path.startswith(api_path):
        path = path[len(api_path):]
    return Op(method, path, json.loads(body) if body.strip() else None,
              {k: v for k, v in headers.items() if k not in ("content-type", "accept")})


def _reply_text(reply: Reply, content_id: int | None) -> str:
    head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        head.append(f"Content-ID: {content_id}")
    body = json.dumps(reply.body) if reply.body is not None else ""
    lines = [f"HTTP/1.1 {reply.status} {'OK' if reply.ok else 'Error'}"]
    headers = dict(reply.headers)
    if body:
        headers["Content-Type"] = "application/json; odata.metadata=minimal"
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return CRLF.join(head) + CRLF + CRLF + CRLF.join(lines) + CRLF + CRLF + body + CRLF


def encode_response(results: Sequence[Reply | list[Reply]]) -> tuple[str, bytes]:
    """The fake server's $batch answer: a Reply per request, a list of them per change set that succeeded
    (a failed change set answers with its one error Reply)."""
    boundary = f"batchresponse_{uuid.uuid4().hex}"
    parts = []
    for r in results:
        if isinstance(r, list):
            inner = f"changesetresponse_{uuid.uuid4().hex}"
            ops = "".join(f"--{inner}{CRLF}{_reply_text(x, i + 1)}" for i, x in enumerate(r))
            parts.append(f"--{boundary}{CRLF}Content-Type: multipart/mixed; boundary={inner}{CRLF}{CRLF}"
                         f"{ops}--{inner}--{CRLF}")
        else:
            parts.append(f"--{boundary}{CRLF}{_reply_text(r, None)}")
    return f"multipart/mixed; boundary={boundary}", ("".join(parts) + f"--{boundary}--{CRLF}").encode()


def decode_response(content_type: str, body: bytes) -> list[Reply | list[Reply]]:
    """The client's side: per batch item, a Reply, or the list of Replies of a change set."""
    out: list[Reply | list[Reply]] = []
    for part in _parts(body.decode(), _boundary(content_type)):
        head, _ = _split(part)
        headers = _headers(head)
        if headers.get("content-type", "").startswith("multipart/mixed"):
            inner = _boundary(headers["content-type"])
            out.append([_reply(p) for p in _parts(part[len(head):].strip(CRLF), inner)])
        else:
            out.append(_reply(part))
    return out


def _reply(part: str) -> Reply:
    start, headers, body = _http_message(part)
    status = int(start.split(" ")[1])
    return Reply(status, headers, json.loads(body) if body.strip() else None)
