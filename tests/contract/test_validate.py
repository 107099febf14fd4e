"""Tests of validate.py itself (issue 15, point 3): a valid exchange passes and each kind of
broken one fails with a message naming what is wrong. The exchanges below are examples of
traffic, not schemas: what they must look like comes from the providers' documents."""

import json
from pathlib import Path

import pytest

import validate

DOCS = validate.DEFAULT_DOCS


@pytest.fixture(scope="session")
def stripe():
    return validate.load("stripe", DOCS)


@pytest.fixture(scope="session")
def xero():
    return validate.load("xero", DOCS)


@pytest.fixture(scope="session")
def hubspot():
    return validate.load("hubspot", DOCS)


def exchange(**kw):
    base = {
        "method": "GET",
        "path": "/",
        "query": "",
        "headers": {},
        "body": None,
        "status": 200,
        "response_headers": {"content-type": "application/json"},
        "response_body": None,
    }
    base.update(kw)
    return validate.Exchange.from_json(base)


def check(provider, contract, ex):
    [result] = validate.check_all(provider, contract, [ex])
    return result


# --- Stripe ----------------------------------------------------------------------------

CUSTOMER = {"id": "cus_1", "object": "customer", "created": 1764633600, "livemode": False, "email": "a@example.com"}
EVENT = {
    "id": "evt_1",
    "object": "event",
    "created": 1764633600,
    "livemode": False,
    "pending_webhooks": 0,
    "type": "customer.updated",
    "api_version": "2020-08-27",
    "request": {"id": None, "idempotency_key": None},
    "data": {"object": CUSTOMER},
}


def stripe_events(query, body=None):
    return exchange(
        path="/v1/events",
        query=query,
        headers={"authorization": "Bearer redacted"},
        response_body=body
        or {"object": "list", "data": [EVENT], "has_more": False, "url": "/v1/events"},
    )


def test_i15_stripe_list_request_and_answer_pass(stripe):
    ex = exchange(
        path="/v1/customers",
        query="limit=100&starting_after=cus_0",
        headers={"authorization": "Bearer redacted"},
        response_body={"object": "list", "data": [CUSTOMER], "has_more": False, "url": "/v1/customers"},
    )
    r = check("stripe", stripe, ex)
    assert r.ok, r.errors


def test_i15_stripe_events_with_created_gte_pass(stripe):
    r = check("stripe", stripe, stripe_events("type=customer.%2A&created%5Bgte%5D=1764633600&limit=100"))
    assert r.ok, r.errors


def test_i15_stripe_created_since_fails_naming_the_parameter(stripe):
    r = check("stripe", stripe, stripe_events("type=customer.%2A&created%5Bsince%5D=1764633600&limit=100"))
    assert not r.ok
    text = "; ".join(r.errors)
    assert "created[since]" in text and "gte" in text, text


def test_i15_stripe_created_gte_must_be_unix_seconds(stripe):
    r = check("stripe", stripe, stripe_events("created%5Bgte%5D=2026-12-01T00:00:00Z"))
    assert not r.ok
    assert "created" in "; ".join(r.errors)


def test_i15_stripe_event_payload_is_checked_as_the_resource_it_names(stripe):
    broken = dict(EVENT, data={"object": {k: v for k, v in CUSTOMER.items() if k != "created"}})
    body = {"object": "list", "data": [EVENT, broken], "has_more": False, "url": "/v1/events"}
    r = check("stripe", stripe, stripe_events("type=customer.%2A", body))
    assert not r.ok
    text = "; ".join(r.errors)
    assert "event 1" in text and "'created' is a required property" in text, text


def test_i15_stripe_unknown_parameter_fails(stripe):
    r = check("stripe", stripe, stripe_events("updated_since=1764633600"))
    assert not r.ok
    assert "updated_since is not declared" in "; ".join(r.errors)


def test_i15_stripe_unknown_path_fails(stripe):
    ex = exchange(path="/v1/contacts", headers={"authorization": "Bearer redacted"}, response_body={})
    r = check("stripe", stripe, ex)
    assert not r.ok
    assert "no path" in r.errors[0]


def test_i15_stripe_request_without_credentials_fails(stripe):
    ex = stripe_events("limit=10")
    ex.headers.pop("authorization")
    r = check("stripe", stripe, ex)
    assert not r.ok
    assert "security" in "; ".join(r.errors).lower() and "bearerAuth" in "; ".join(r.errors)


def test_i15_stripe_answer_missing_a_required_field_fails(stripe):
    broken = {k: v for k, v in CUSTOMER.items() if k != "livemode"}
    ex = exchange(
        path="/v1/customers",
        headers={"authorization": "Bearer redacted"},
        response_body={"object": "list", "data": [broken], "has_more": False, "url": "/v1/customers"},
    )
    r = check("stripe", stripe, ex)
    assert not r.ok
    text = "; ".join(r.errors)
    assert text.startswith("response") and "livemode" in text, text


def test_i15_stripe_error_answer_is_checked_against_the_error_schema(stripe):
    ok = exchange(
        path="/v1/customers",
        headers={"authorization": "Bearer redacted"},
        status=401,
        response_body={"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}},
    )
    assert check("stripe", stripe, ok).ok
    bad = exchange(
        path="/v1/customers",
        headers={"authorization": "Bearer redacted"},
        status=401,
        response_body={"message": "no"},
    )
    r = check("stripe", stripe, bad)
    assert not r.ok and "error" in "; ".join(r.errors)


# --- Xero ------------------------------------------------------------------------------

CONTACT = {
    "ContactID": "5cc8cf28-567e-4d43-b287-687cfcaec47c",
    "Name": "Ridgeway Bakery",
    "ContactStatus": "ACTIVE",
    "EmailAddress": "orders@ridgeway.example",
    "UpdatedDateUTC": "/Date(1573755038314+0000)/",
    "Addresses": [{"AddressType": "POBOX", "City": "Wellington", "Country": "NZ"}],
}
XERO_HEADERS = {
    "authorization": "Bearer redacted",
    "xero-tenant-id": "fe79f7dd-b6d4-4a92-ba7b-538af6289c58",
    "accept": "application/json",
}


def xero_contacts(headers, query="page=1"):
    return exchange(
        path="/api.xro/2.0/Contacts",
        query=query,
        headers=headers,
        response_body={"Contacts": [CONTACT]},
    )


def test_i15_xero_contacts_with_tenant_and_if_modified_since_pass(xero):
    headers = dict(XERO_HEADERS, **{"if-modified-since": "2026-12-01T00:00:00Z"})
    r = check("xero", xero, xero_contacts(headers))
    assert r.ok, r.errors


def test_i15_xero_request_without_tenant_header_fails(xero):
    headers = {k: v for k, v in XERO_HEADERS.items() if k != "xero-tenant-id"}
    r = check("xero", xero, xero_contacts(headers))
    assert not r.ok
    assert "xero-tenant-id" in "; ".join(r.errors)


def test_i15_xero_if_modified_since_must_be_a_date_time(xero):
    headers = dict(XERO_HEADERS, **{"if-modified-since": "Tue, 01 Dec 2026 00:00:00 GMT"})
    r = check("xero", xero, xero_contacts(headers))
    assert not r.ok
    assert "If-Modified-Since" in "; ".join(r.errors)


def test_i15_xero_request_without_a_bearer_token_fails(xero):
    headers = {k: v for k, v in XERO_HEADERS.items() if k != "authorization"}
    r = check("xero", xero, xero_contacts(headers))
    assert not r.ok
    assert "OAuth 2.0" in "; ".join(r.errors)


def test_i15_xero_where_filter_and_get_by_id_pass(xero):
    r = check("xero", xero, xero_contacts(XERO_HEADERS, query="where=Type%3D%3D%22ACCREC%22&page=2"))
    assert r.ok, r.errors
    by_id = exchange(
        path=f"/api.xro/2.0/Contacts/{CONTACT['ContactID']}",
        headers=XERO_HEADERS,
        response_body={"Contacts": [CONTACT]},
    )
    assert check("xero", xero, by_id).ok


def test_i15_xero_connections_are_checked_against_the_identity_document(xero):
    ex = exchange(
        path="/connections",
        headers={"authorization": "Bearer redacted"},
        response_body=[
            {
                "id": "7cb59f93-2964-421d-bb5e-a0f7a4572a44",
                "tenantId": "fe79f7dd-b6d4-4a92-ba7b-538af6289c58",
                "tenantName": "Demo Company (NZ)",
                "tenantType": "ORGANISATION",
                "createdDateUtc": "2019-12-07T18:46:19.516Z",
                "updatedDateUtc": "2019-12-07T18:46:19.518Z",
            }
        ],
    )
    r = check("xero", xero, ex)
    assert r.ok, r.errors
    bad = exchange(path="/connections", headers={"authorization": "Bearer redacted"}, response_body=[{"tenantId": "not-a-uuid"}])
    r = check("xero", xero, bad)
    assert not r.ok and "tenantId" in "; ".join(r.errors)


def test_i15_xero_token_endpoint_is_skipped_by_name(xero):
    ex = exchange(method="POST", path="/connect/token", body="grant_type=refresh_token", response_body={})
    r = check("xero", xero, ex)
    assert r.skipped and r.ok


# --- HubSpot ---------------------------------------------------------------------------

HS_OBJECT = {
    "id": "101",
    "properties": {"email": "a@example.com", "firstname": "Ana", "company": None},
    "createdAt": "2026-11-01T10:00:00Z",
    "updatedAt": "2026-12-01T10:00:00Z",
    "archived": False,
}
HS_HEADERS = {"authorization": "Bearer redacted", "accept": "application/json"}


def test_i15_hubspot_list_request_and_answer_pass(hubspot):
    ex = exchange(
        path="/crm/v3/objects/contacts",
        query="properties=email%2Cfirstname&archived=false&limit=100&after=101",
        headers=HS_HEADERS,
        response_body={"results": [HS_OBJECT], "paging": {"next": {"after": "102", "link": "x"}}},
    )
    r = check("hubspot", hubspot, ex)
    assert r.ok, r.errors


def test_i15_hubspot_unknown_query_parameter_fails(hubspot):
    ex = exchange(
        path="/crm/v3/objects/deals",
        query="updatedSince=1764633600000",
        headers=HS_HEADERS,
        response_body={"results": []},
    )
    r = check("hubspot", hubspot, ex)
    assert not r.ok
    assert "updatedSince is not accepted" in "; ".join(r.errors)


def test_i15_hubspot_search_body_is_the_search_request_model(hubspot):
    body = {
        "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "1764633600000"}]}],
        "sorts": ["hs_lastmodifieddate"],
        "properties": ["name"],
        "limit": 100,
        "after": "0",
    }
    ok = exchange(
        method="POST",
        path="/crm/v3/objects/companies/search",
        headers=dict(HS_HEADERS, **{"content-type": "application/json"}),
        body=json.dumps(body),
        response_body={"total": 1, "results": [HS_OBJECT]},
    )
    r = check("hubspot", hubspot, ok)
    assert r.ok, r.errors
    wrong = dict(body, since="1764633600000")
    wrong["filterGroups"] = [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "AFTER", "value": "1"}]}]
    bad = exchange(
        method="POST",
        path="/crm/v3/objects/companies/search",
        headers=dict(HS_HEADERS, **{"content-type": "application/json"}),
        body=json.dumps(wrong),
        response_body={"total": 1, "results": [HS_OBJECT]},
    )
    text = "; ".join(check("hubspot", hubspot, bad).errors)
    assert "'since' is not a field of PublicObjectSearchRequest" in text, text


def test_i15_hubspot_answer_missing_a_required_field_fails(hubspot):
    broken = {k: v for k, v in HS_OBJECT.items() if k != "createdAt"}
    ex = exchange(path="/crm/v3/objects/contacts/101", headers=HS_HEADERS, response_body=broken)
    r = check("hubspot", hubspot, ex)
    assert not r.ok
    text = "; ".join(r.errors)
    assert text.startswith("response") and "created_at" in text, text


def test_i15_hubspot_answer_with_a_wrong_type_fails(hubspot):
    ex = exchange(path="/crm/v3/objects/contacts/101", headers=HS_HEADERS, response_body=dict(HS_OBJECT, id=101))
    r = check("hubspot", hubspot, ex)
    assert not r.ok and "expected str" in "; ".join(r.errors)


def test_i15_hubspot_token_endpoint_is_checked_against_auth_json(hubspot):
    ex = exchange(
        method="POST",
        path="/oauth/v1/token",
        headers={"content-type": "application/x-www-form-urlencoded"},
        # as the sandbox logs a form: an object of its fields
        body={"grant_type": "refresh_token", "client_id": "abc", "client_secret": "redacted", "refresh_token": "redacted"},
        response_body={"access_token": "redacted", "refresh_token": "redacted", "expires_in": 1800, "token_type": "bearer"},
    )
    r = check("hubspot", hubspot, ex)
    assert r.ok, r.errors
    bad = exchange(
        method="POST",
        path="/oauth/v1/token",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body="grant_type=password&client_id=abc",
        response_body={"access_token": "redacted"},
    )
    assert not check("hubspot", hubspot, bad).ok


# --- The command -----------------------------------------------------------------------


def test_i15_command_exits_non_zero_on_a_failure(tmp_path: Path, capsys):
    log = tmp_path / "x.jsonl"
    good = {"method": "GET", "path": "/v1/customers", "query": "limit=10", "headers": {"authorization": "Bearer redacted"},
            "status": 200, "response_headers": {"content-type": "application/json"},
            "response_body": {"object": "list", "data": [CUSTOMER], "has_more": False, "url": "/v1/customers"}}
    bad = dict(good, query="created%5Bsince%5D=1")
    log.write_text(json.dumps(good) + "\n")
    assert validate.main(["--provider", "stripe", str(log)]) == 0
    log.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    assert validate.main(["--provider", "stripe", str(log)]) == 1
    out = capsys.readouterr().out
    assert "FAIL stripe:2" in out and "ok 1, FAIL 1" in out
