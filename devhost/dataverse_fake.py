"""A fake Dataverse Web API for tests and `make bench`: the OData subset closedloop uses, over a real socket.

Metadata: EntityDefinitions (tables, Attributes, Keys), GlobalOptionSetDefinitions, RelationshipDefinitions,
created by POST and read by GET, each creation recorded against the MSCRM.SolutionUniqueName solution.
Data: entity sets addressed by alternate key (`cl_opportunities(cl_key='…')`), PATCH upserts with If-Match /
If-None-Match, GET with $filter (eq ne gt ge lt le, and or not, parentheses), $select, $orderby, $top and
paging (`Prefer: odata.maxpagesize`, `@odata.nextLink`), and `$batch` with atomic change sets and
continue-on-error. Only provisioned tables and columns are accepted, so the store and the provisioning
cannot drift apart. Knobs inject 429s with Retry-After; every request is counted.
"""
from __future__ import annotations

import copy
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from shared.adapters.dataverse import batch

API = "/api/data/v9.2/"
_TOKEN = re.compile(r"\s*(\(|\)|'(?:[^']|'')*'|[A-Za-z_][A-Za-z0-9_.]*|"
                    r"-?\d{4}-\d\d-\d\dT[\d:.]+Z|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")
_OPS = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a is not None and a > b,
        "ge": lambda a, b: a is not None and a >= b, "lt": lambda a, b: a is not None and a < b,
        "le": lambda a, b: a is not None and a <= b}


class Problem(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _literal(token: str) -> Any:
    if token.startswith("'"):
        return token[1:-1].replace("''", "'")
    if token in ("true", "false"):
        return token == "true"
    if token == "null":
        return None
    if "T" in token and token.endswith("Z"):
        return token
    return float(token) if any(c in token for c in ".eE") else int(token)


def parse_filter(text: str):
    """A predicate over a row from an OData $filter (the subset above)."""
    tokens = [m.group(1) for m in _TOKEN.finditer(text)]
    if "".join(tokens).replace(" ", "") != text.replace(" ", ""):
        raise Problem(400, f"unsupported $filter: {text}")
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def expr():
        left = conj()
        while peek() == "or":
            take()
            right, prev = conj(), left
            left = lambda r, a=prev, b=right: a(r) or b(r)  # noqa: E731
        return left

    def conj():
        left = unary()
        while peek() == "and":
            take()
            right, prev = unary(), left
            left = lambda r, a=prev, b=right: a(r) and b(r)  # noqa: E731
        return left

    def unary():
        if peek() == "not":
            take()
            inner = unary()
            return lambda r: not inner(r)
        if peek() == "(":
            take()
            inner = expr()
            if take() != ")":
                raise Problem(400, "unbalanced parentheses in $filter")
            return inner
        field, op, value = take(), take(), _literal(take())
        if op not in _OPS:
            raise Problem(400, f"unsupported operator {op}")
        return lambda r: _OPS[op](r.get(field), value)

    predicate = expr()
    if pos != len(tokens):
        raise Problem(400, f"could not parse $filter: {text}")
    return predicate


def _key_list(text: str, key_columns: list[str]) -> list[str] | None:
    """The keys of a filter that only ORs `<key> eq '…'` (a batch read by key): served by lookup, like an index."""
    if not key_columns or not text:
        return None
    parts = [p.strip() for p in re.split(r"\s+or\s+", text)]
    found = []
    for p in parts:
        m = re.fullmatch(rf"{key_columns[0]} eq '((?:[^']|'')*)'", p)
        if not m:
            return None
        found.append(m.group(1).replace("''", "'"))
    return found


class FakeDataverse:
    def __init__(self, port: int = 0, token: str = "test-token", page_size_cap: int = 5000):
        self.token, self.page_size_cap = token, page_size_cap
        self.tables: dict[str, dict[str, Any]] = {}   # logical name → {set, attributes, keys, primary}
        self.option_sets: dict[str, dict[str, Any]] = {}
        self.relationships: dict[str, dict[str, Any]] = {}
        self.solution: dict[str, list[str]] = {}
        self.rows: dict[str, dict[str, dict[str, Any]]] = {}  # entity set → key → row
        self.requests = 0
        self.throttled = 0
        self.throttle_every = 0   # every Nth request answers 429 (0: never)
        self.retry_after = "0"
        self._etag = 0
        self._lock = threading.RLock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One buffered write per response and no Nagle: otherwise every keep-alive request waits out
            # the client's delayed ACK (~40 ms).
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = outer.handle(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeDataverse:
        threading.Thread(target=self._server.serve_forever, name="fake-dataverse", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeDataverse:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- HTTP ----------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, str], bytes]:
        h = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.requests += 1
            if self.throttle_every and self.requests % self.throttle_every == 0:
                self.throttled += 1
                return self._error(Problem(429, "Number of requests exceeded the limit of 6000 over time window "
                                                "of 300 seconds.", {"Retry-After": self.retry_after}))
        if h.get("authorization") != f"Bearer {self.token}":
            return self._error(Problem(401, "no or wrong bearer token"))
        path = urlsplit(target).path
        if not path.startswith(API):
            return self._error(Problem(404, f"no route {path}"))
        relative = target[target.index(API) + len(API):]
        try:
            if relative == "$batch" and method == "POST":
                return self._batch(h, body)
            reply = self.execute(method, relative, json.loads(body) if body.strip() else None, h)
        except Problem as exc:
            return self._error(exc)
        return reply.status, {"content-type": "application/json", **reply.headers}, (
            json.dumps(reply.body).encode() if reply.body is not None else b"")

    def _error(self, exc: Problem) -> tuple[int, dict[str, str], bytes]:
        return exc.status, {"content-type": "application/json", **exc.headers}, json.dumps(
            {"error": {"code": f"0x{exc.status:08x}", "message": exc.message}}).encode()

    def _batch(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        items = batch.decode_request(headers["content-type"], body, API)
        if sum(len(i.ops) if isinstance(i, batch.ChangeSet) else 1 for i in items) > 1000:
            raise Problem(400, "a batch holds at most 1000 requests")
        results: list[Any] = []
        go_on = "odata.continue-on-error" in headers.get("prefer", "")
        for item in items:
            with self._lock:
                if isinstance(item, batch.ChangeSet):
                    saved = copy.deepcopy(self.rows)
                    replies = []
                    try:
                        for op in item.ops:
                            replies.append(self.execute(op.method, op.url, op.body, op.headers))
                        results.append(replies)
                    except Problem as exc:
                        self.rows = saved  # all or nothing
                        results.append(batch.Reply(exc.status, {}, {"error": {"message": exc.message}}))
                        if not go_on:
                            break
                else:
                    try:
                        results.append(self.execute(item.method, item.url, item.body, item.headers))
                    except Problem as exc:
                        results.append(batch.Reply(exc.status, {}, {"error": {"message": exc.message}}))
                        if not go_on:
                            break
        content_type, payload = batch.encode_response(results)
        return 200, {"content-type": content_type}, payload

    # -- operations ----------------------------------------------------------------------------------
    def execute(self, method: str, relative: str, body: Any, headers: dict[str, str]) -> batch.Reply:
        headers = {k.lower(): v for k, v in headers.items()}
        path, _, query = relative.partition("?")
        path = unquote(path)
        with self._lock:
            if path.startswith(("EntityDefinitions", "GlobalOptionSetDefinitions", "RelationshipDefinitions")):
                return self._metadata(method, path, body, headers)
            m = re.fullmatch(r"([A-Za-z_0-9]+)(?:\((.*)\))?", path)
            if not m:
                raise Problem(404, f"no resource {path}")
            entity_set, address = m.group(1), m.group(2)
            table = next((t for t in self.tables.values() if t["set"] == entity_set), None)
            if table is None:
                raise Problem(404, f"Resource not found for the segment '{entity_set}'.")
            if address is None and method == "GET":
                return self._query(entity_set, table, dict(parse_qsl(query)), headers)
            if address is None:
                raise Problem(405, f"{method} on an entity set: use PATCH with an alternate key")
            key = self._key(table, address)
            if method == "GET":
                row = self.rows.get(entity_set, {}).get(key)
                if row is None:
                    raise Problem(404, f"{entity_set} with key {key} does not exist")
                return batch.Reply(200, {}, self._view(row, None))
            if method == "PATCH":
                return self._upsert(entity_set, table, key, body or {}, headers)
            raise Problem(405, f"{method} is not supported here")

    def _key(self, table: dict[str, Any], address: str) -> str:
        m = re.fullmatch(r"([a-z_0-9]+)='((?:[^']|'')*)'", unquote(address))
        if not m or m.group(1) not in table["keys"]:
            raise Problem(400, f"{address} is not an alternate key of {table['logical']}")
        value = m.group(2).replace("''", "'")
        # As documented for Dataverse: GET and PATCH by such a key value do not work.
        bad = sorted(set(value) & set('/#<>*%&:\\?+'))
        if bad:
            raise Problem(400, f"alternate key value {value!r} holds {''.join(bad)}: GET and PATCH by it do not work")
        return value

    def _upsert(self, entity_set: str, table: dict[str, Any], key: str, body: dict[str, Any],
                headers: dict[str, str]) -> batch.Reply:
        for name, value in body.items():
            column = name.split("@")[0]
            if column not in table["attributes"]:
                raise Problem(400, f"Invalid property '{column}' was found in entity '{table['logical']}'.")
            kind = table["attributes"][column]
            if kind == "Picklist" and value is not None and value not in self._options(table["logical"], column):
                raise Problem(400, f"{value} is not a valid value of {column}")
        rows = self.rows.setdefault(entity_set, {})
        current = rows.get(key)
        match, none_match = headers.get("if-match"), headers.get("if-none-match")
        if none_match == "*" and current is not None:
            raise Problem(412, "A record with matching key values already exists.")
        if match is not None:
            if current is None:
                raise Problem(404, f"{entity_set} with key {key} does not exist")
            if match != "*" and match != current["@etag"]:
                raise Problem(412, "The version of the existing record doesn't match the RowVersion property.")
        row = dict(current or {})
        row.update(dict(body.items()))
        row[table["keys"][0]] = key
        self._etag += 1
        row["@etag"] = f'W/"{self._etag}"'
        rows[key] = row
        return batch.Reply(204, {"ETag": row["@etag"], "OData-EntityId": f"{self.url}{API}{entity_set}({key})"}, None)

    def _view(self, row: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
        out = {k: v for k, v in row.items() if k != "@etag" and (select is None or k in select)}
        out["@odata.etag"] = row["@etag"]
        return out

    def _query(self, entity_set: str, table: dict[str, Any], q: dict[str, str], headers: dict[str, str]
               ) -> batch.Reply:
        stored = self.rows.get(entity_set, {})
        keys = _key_list(q.get("$filter", ""), table["keys"])
        rows = [stored[k] for k in keys if k in stored] if keys is not None else list(stored.values())
        if "$filter" in q and keys is None:
            predicate = parse_filter(q["$filter"])
            rows = [r for r in rows if predicate(r)]
        for part in reversed([p.strip() for p in q.get("$orderby", "").split(",") if p.strip()]):
            name, _, direction = part.partition(" ")
            rows.sort(key=lambda r: (r.get(name) is None, r.get(name)), reverse=direction == "desc")
        if "$top" in q:
            rows = rows[:int(q["$top"])]
        select = q["$select"].split(",") if "$select" in q else None
        for name in select or ():
            if name not in table["attributes"]:
                raise Problem(400, f"Could not find a property named '{name}' on type '{table['logical']}'.")
        size = self.page_size_cap
        m = re.search(r"odata\.maxpagesize=(\d+)", headers.get("prefer", ""))
        if m:
            size = min(size, int(m.group(1)))
        skip = int(q.get("$skiptoken", "0"))
        page = rows[skip:skip + size]
        body: dict[str, Any] = {"value": [self._view(r, select) for r in page]}
        if skip + size < len(rows):
            rest = {k: v for k, v in q.items() if k != "$skiptoken"}
            from urllib.parse import urlencode
            body["@odata.nextLink"] = f"{self.url}{API}{entity_set}?{urlencode({**rest, '$skiptoken': skip + size})}"
        return batch.Reply(200, {"Preference-Applied": f"odata.maxpagesize={size}"} if m else {}, body)

    def _options(self, logical: str, column: str) -> set[int]:
        name = self.tables[logical]["choices"].get(column)
        return {o["Value"] for o in self.option_sets.get(name, {}).get("Options", [])}

    # -- metadata ------------------------------------------------------------------------------------
    def _metadata(self, method: str, path: str, body: Any, headers: dict[str, str]) -> batch.Reply:
        solution = headers.get("mscrm.solutionuniquename")
        m = re.fullmatch(r"EntityDefinitions\(LogicalName='([a-z_0-9]+)'\)"
                         r"(?:/(Attributes|Keys)(?:\(LogicalName='([a-z_0-9]+)'\))?)?", path)
        if path == "EntityDefinitions" and method == "POST":
            logical = body["SchemaName"].lower()
            if logical in self.tables:
                raise Problem(400, f"An entity with the name {logical} already exists")
            table = {"logical": logical, "set": body.get("EntitySetName") or logical + "s", "attributes": {},
                     "keys": [], "choices": {}, "primary": None}
            self.tables[logical] = table
            for attribute in body.get("Attributes", []):
                self._add_attribute(table, attribute)
            self._component(solution, f"table:{logical}")
            return batch.Reply(204, {"OData-EntityId": f"{self.url}{API}EntityDefinitions(LogicalName='{logical}')"},
                               None)
        if m and method == "GET":
            found = self.tables.get(m.group(1))
            if found is None:
                raise Problem(404, f"Could not find entity {m.group(1)}")
            table = found
            if m.group(2) == "Attributes" and m.group(3):
                if m.group(3) not in table["attributes"]:
                    raise Problem(404, f"Could not find attribute {m.group(3)}")
                return batch.Reply(200, {}, {"LogicalName": m.group(3),
                                             "AttributeType": table["attributes"][m.group(3)]})
            if m.group(2) == "Keys":
                keys = [table["keys"]] if table["keys"] else []
                return batch.Reply(200, {}, {"value": [{"KeyAttributes": k} for k in keys]})
            return batch.Reply(200, {}, {"LogicalName": table["logical"], "EntitySetName": table["set"]})
        if m and method == "POST" and m.group(2) == "Attributes":
            found = self.tables.get(m.group(1))
            if found is None:
                raise Problem(404, f"Could not find entity {m.group(1)}")
            self._add_attribute(found, body)
            self._component(solution, f"column:{found['logical']}.{body['SchemaName'].lower()}")
            return batch.Reply(204, {}, None)
        if m and method == "POST" and m.group(2) == "Keys":
            table = self.tables[m.group(1)]
            keys = [k.lower() for k in body["KeyAttributes"]]
            if table["keys"]:
                raise Problem(400, "the key already exists")
            missing = [k for k in keys if k not in table["attributes"]]
            if missing:
                raise Problem(400, f"key columns {missing} do not exist")
            table["keys"] = keys
            self._component(solution, f"key:{table['logical']}")
            return batch.Reply(204, {}, None)
        g = re.fullmatch(r"GlobalOptionSetDefinitions(?:\(Name='([a-z_0-9]+)'\))?", path)
        if g and method == "GET":
            if g.group(1) not in self.option_sets:
                raise Problem(404, f"Could not find option set {g.group(1)}")
            return batch.Reply(200, {}, self.option_sets[g.group(1)])
        if g and method == "POST":
            name = body["Name"].lower()
            if name in self.option_sets:
                raise Problem(400, f"option set {name} exists")
            self.option_sets[name] = {"Name": name, "Options": [{"Value": o["Value"]} for o in body["Options"]]}
            self._component(solution, f"choice:{name}")
            return batch.Reply(204, {}, None)
        r = re.fullmatch(r"RelationshipDefinitions(?:\(SchemaName='([A-Za-z_0-9]+)'\))?", path)
        if r and method == "GET":
            if (r.group(1) or "").lower() not in self.relationships:
                raise Problem(404, f"Could not find relationship {r.group(1)}")
            return batch.Reply(200, {}, self.relationships[r.group(1).lower()])
        if r and method == "POST":
            name = body["SchemaName"].lower()
            child = self.tables.get(body["ReferencingEntity"])
            if child is None or body["ReferencedEntity"] not in self.tables:
                raise Problem(400, "both tables of a relationship must exist")
            self._add_attribute(child, {**body["Lookup"],
                                        "@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata"})
            self.relationships[name] = {"SchemaName": name, "ReferencedEntity": body["ReferencedEntity"],
                                        "ReferencingEntity": body["ReferencingEntity"]}
            self._component(solution, f"relationship:{name}")
            return batch.Reply(204, {}, None)
        raise Problem(404, f"no metadata route {method} {path}")

    def _add_attribute(self, table: dict[str, Any], attribute: dict[str, Any]) -> None:
        name = attribute["SchemaName"].lower()
        if name in table["attributes"]:
            raise Problem(400, f"attribute {name} exists on {table['logical']}")
        kind = attribute["@odata.type"].rsplit(".", 1)[-1].replace("AttributeMetadata", "")
        table["attributes"][name] = kind
        if kind == "Picklist":
            table["choices"][name] = attribute["GlobalOptionSet@odata.bind"].split("'")[1].lower()
        if attribute.get("IsPrimaryName"):
            table["primary"] = name

    def _component(self, solution: str | None, what: str) -> None:
        if solution:
            self.solution.setdefault(solution, []).append(what)
