"""The review queue page over HTTP (no browser): sign-in, session cookie, CSRF, the pages and the actions.

The app runs over a real SQLite database holding cases made by the decision path (tests/serving/queue_cases.py).
"""

import re
import stat

import pytest
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from serving.db import api_keys, review_cases
from serving.schemas import ShipmentIn
from serving.web import create_web_app
from serving.web.session import COOKIE, Session, SessionCodec, load_or_create_secret
from tests.serving.conftest import SHIPMENT, StubDelayScorer, make_runtime
from tests.serving.queue_cases import make_keys, seed_cases

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def world(tmp_path):
    runtime = make_runtime(f"sqlite:///{tmp_path}/queue.db", StubDelayScorer({}))
    cases = seed_cases(runtime)
    keys = make_keys(runtime.engine)
    app = create_web_app(lambda: runtime, secret_file=tmp_path / "web.secret", facts=None)
    return {"runtime": runtime, "cases": cases, "keys": keys, "app": app, "secret": tmp_path / "web.secret"}


def _csrf(page_text: str) -> str:
    return CSRF.search(page_text).group(1)


def _signed_in(world, role: str = "reviewer") -> TestClient:
    client = TestClient(world["app"])
    token = _csrf(client.get("/sign-in").text)
    r = client.post("/sign-in", data={"api_key": world["keys"][role], "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    return client


def _status(world, case_id: str) -> dict:
    with world["runtime"].engine.connect() as conn:
        return dict(conn.execute(select(review_cases.c.status, review_cases.c.claimed_by, review_cases.c.version)
                                 .where(review_cases.c.case_id == case_id)).mappings().one())


def test_sign_in_refuses_an_unknown_key_and_an_orchestrator_key(world):
    client = TestClient(world["app"])
    token = _csrf(client.get("/sign-in").text)
    bad = client.post("/sign-in", data={"api_key": "tg_nothere_abc", "csrf_token": token})
    assert bad.status_code == 401 and "not recognised" in bad.text
    robot = client.post("/sign-in", data={"api_key": world["keys"]["orchestrator"], "csrf_token": token})
    assert robot.status_code == 403 and "orchestrator" in robot.text and "cannot use the review queue" in robot.text
    assert client.get("/", follow_redirects=False).headers["location"] == "/sign-in"


def test_session_cookie_is_httponly_samesite_signed_and_holds_no_key(world):
    client = TestClient(world["app"])
    first = client.get("/sign-in").headers["set-cookie"]
    assert "HttpOnly" in first and "samesite=lax" in first.lower() and "Secure" not in first and "Path=/" in first
    token = _csrf(client.get("/sign-in").text)
    r = client.post("/sign-in", data={"api_key": world["keys"]["reviewer"], "csrf_token": token},
                    follow_redirects=False)
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    key_secret = world["keys"]["reviewer"].split("_", 2)[2]
    assert key_secret not in cookie
    assert client.get("/").status_code == 200
    tampered = TestClient(world["app"], cookies={COOKIE: client.cookies[COOKIE][:-3] + "xyz"})
    assert tampered.get("/", follow_redirects=False).status_code == 303
    over_https = TestClient(world["app"], base_url="https://queue.example")
    assert "Secure" in over_https.get("/sign-in").headers["set-cookie"]
    page = client.get("/")
    assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert client.get("/sign-in", follow_redirects=False).headers["location"] == "/"  # already signed in


def test_mounted_at_queue_the_links_and_cookie_path_carry_the_prefix(world):
    outer = FastAPI()
    outer.mount("/queue", world["app"])
    client = TestClient(outer)
    page = client.get("/queue/sign-in")
    assert page.status_code == 200 and 'action="/queue/sign-in"' in page.text and "/queue/static/queue.css" in page.text
    assert "Path=/queue" in page.headers["set-cookie"]
    assert client.get("/queue/static/queue.css").status_code == 200
    r = client.post("/queue/sign-in", data={"api_key": world["keys"]["reviewer"], "csrf_token": _csrf(page.text)},
                    follow_redirects=False)
    assert r.headers["location"] == "/queue/"
    assert 'href="/queue/cases/' in client.get("/queue/").text
    assert get_openapi(title="queue", version="1", routes=world["app"].routes)["paths"] == {}  # not in /docs


def test_forms_without_the_session_token_are_refused_and_change_nothing(world):
    client = TestClient(world["app"])
    client.get("/sign-in")
    assert client.post("/sign-in", data={"api_key": world["keys"]["reviewer"]}).status_code == 403
    reviewer = _signed_in(world)
    case_id = world["cases"]["INV-OVER"]
    before = _status(world, case_id)
    for data in ({}, {"csrf_token": "forged"}):
        refused = reviewer.post(f"/cases/{case_id}/claim", data=data)
        assert refused.status_code == 403 and "security token" in refused.text
    assert _status(world, case_id) == before
    outsider = TestClient(world["app"])  # a cross-site post carries no session at all
    assert outsider.post(f"/cases/{case_id}/claim", data={"csrf_token": "x"}).status_code == 403
    assert _status(world, case_id) == before


def test_unknown_case_is_a_readable_404(world):
    client = _signed_in(world)
    r = client.get("/cases/no-such-case")
    assert r.status_code == 404 and "There is no review case" in r.text and "Traceback" not in r.text


def test_queue_lists_riskiest_dollars_first_and_filters(world):
    client = _signed_in(world)
    page = client.get("/").text
    order = [m for m in re.findall(r"Invoice (INV-[A-Z]+)", page)]
    assert order[:3] == ["INV-OVER", "INV-BIG", "INV-FUEL"]
    assert "$520.00" in page and "Rate overcharge (62%)" in page and "EWR-ORD" in page and "left" in page
    only_dl = client.get("/?carrier=dl").text
    assert "INV-FUEL" in only_dl and "INV-OVER" not in only_dl
    cheap_first = client.get("/?sort=amount_at_risk&order=asc").text
    assert cheap_first.index("INV-FUEL") < cheap_first.index("INV-OVER")
    assert 'aria-sort="ascending"' in cheap_first
    mid = client.get("/?amount_min=100&amount_max=200").text
    assert "INV-BIG" in mid and "INV-OVER" not in mid and "INV-FUEL" not in mid
    odd = client.get("/?amount_min=lots&page=-2")
    assert odd.status_code == 200 and "is not an amount" in odd.text and "INV-OVER" in odd.text
    assert "No cases match" in client.get("/?sla=breached").text


def test_case_page_shows_lines_beside_expected_charges_reasons_rules_and_history(world):
    client = _signed_in(world)
    page = client.get(f"/cases/{world['cases']['INV-OVER']}").text
    rows = {m[0]: m[1] for m in re.findall(r'<th scope="row">(\w+)</th>(.*?)</tr>', page, re.DOTALL)}
    assert "$1,450.00" in rows["Linehaul"] and "$1,050.00" in rows["Linehaul"] and "+$400.00" in rows["Linehaul"]
    assert "+$93.00" in rows["Fuel"] and "matches" in rows["Security"] and "unverified" in rows["Storage"]
    assert 'class="diff"' in page
    assert "Linehaul billed minus the contract amount" in page and "points towards “Rate overcharge”" in page
    assert "review-uncertain" in page
    assert "Proof of delivery" in page and "Signed by: R. Ortiz" in page and "2013-12-02 19:05 UTC" in page
    assert "Created" in page and "Claim this case" in page


def test_claim_conflict_and_a_bad_verdict_are_messages_on_the_page(world):
    rita, ada = _signed_in(world), _signed_in(world, "admin")
    case_id = world["cases"]["INV-OVER"]
    token = _csrf(rita.get(f"/cases/{case_id}").text)
    claimed = rita.post(f"/cases/{case_id}/claim", data={"csrf_token": token})
    assert claimed.status_code == 200 and "You hold this case now." in claimed.text
    assert "Rita Reviewer" in claimed.text and "Approve as billed" in claimed.text
    other = ada.get(f"/cases/{case_id}").text
    assert "Claimed by <strong>Rita Reviewer</strong>" in other and "Claim this case" not in other
    conflict = ada.post(f"/cases/{case_id}/claim", data={"csrf_token": _csrf(other)})
    assert conflict.status_code == 409 and "Conflict:" in conflict.text and "held by Rita Reviewer" in conflict.text
    before = _status(world, case_id)
    bad = rita.post(f"/cases/{case_id}/resolve", data={"csrf_token": token, "verdict": "dispute", "amount": "400"})
    assert bad.status_code == 422 and "Please correct the form" in bad.text and "reason_code" in bad.text
    nan = rita.post(f"/cases/{case_id}/resolve", data={"csrf_token": token, "verdict": "dispute", "amount": "four"})
    assert nan.status_code == 422 and "not a number" in nan.text
    assert _status(world, case_id) == before


def test_resolve_leaves_the_open_queue_and_shows_in_history_with_the_reviewers_name(world):
    rita = _signed_in(world)
    case_id = world["cases"]["INV-OVER"]
    token = _csrf(rita.get(f"/cases/{case_id}").text)
    rita.post(f"/cases/{case_id}/claim", data={"csrf_token": token})
    done = rita.post(f"/cases/{case_id}/resolve", data={
        "csrf_token": token, "verdict": "dispute", "amount": "493.00", "reason_code": "rate_not_per_contract",
        "discrepancy": "", "note": "linehaul at the old rate", "resolve_token": "form-1"})
    assert done.status_code == 200 and "Verdict recorded." in done.text
    history = done.text[done.text.index('data-testid="history"'):]
    assert "Resolved" in history and "Rita Reviewer" in history and "$493.00" in history
    assert "Dispute opened" in history
    assert _status(world, case_id)["status"] == "resolved"
    assert "INV-OVER" not in rita.get("/").text
    assert "INV-OVER" in rita.get("/?status=resolved").text


def test_four_eyes_second_approval_only_by_another_approver(world):
    rita, abe = _signed_in(world), _signed_in(world, "approver")
    case_id = world["cases"]["INV-BIG"]
    token = _csrf(rita.get(f"/cases/{case_id}").text)
    rita.post(f"/cases/{case_id}/claim", data={"csrf_token": token})
    waiting = rita.post(f"/cases/{case_id}/resolve", data={"csrf_token": token, "verdict": "approve_as_billed"})
    assert "Awaiting second approval" in waiting.text and "Give the second approval" not in waiting.text
    refused = rita.post(f"/cases/{case_id}/approve", data={"csrf_token": token})
    assert refused.status_code == 403 and "Not allowed" in refused.text
    assert _status(world, case_id)["status"] == "awaiting_approval"
    page = abe.get(f"/cases/{case_id}").text
    approved = abe.post(f"/cases/{case_id}/approve", data={"csrf_token": _csrf(page)})
    assert approved.status_code == 200 and "Second approval recorded." in approved.text
    assert "Abe Approver" in approved.text and _status(world, case_id)["status"] == "resolved"


def test_sign_out_and_revocation_end_the_session(world):
    rita = _signed_in(world)
    token = _csrf(rita.get("/").text)
    out = rita.post("/sign-out", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/sign-in?done=signed-out"
    assert rita.get("/", follow_redirects=False).status_code == 303
    assert rita.post(f"/cases/{world['cases']['INV-FUEL']}/claim", data={"csrf_token": token}).status_code == 403
    abe = _signed_in(world, "approver")
    with world["runtime"].engine.begin() as conn:
        conn.execute(update(api_keys).where(api_keys.c.name == "Abe Approver").values(revoked_at=api_keys.c.created_at))
    assert abe.get("/", follow_redirects=False).headers["location"] == "/sign-in"


def test_the_install_secret_is_created_once_private_and_shared(tmp_path):
    path = tmp_path / "var" / "web.secret"
    first = load_or_create_secret(path)
    assert load_or_create_secret(path) == first and len(first) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(path.parent.iterdir()) == [path]  # no draft left behind
    a, b = SessionCodec(path), SessionCodec(path)
    session = Session.anonymous().signed_in("k123")
    assert b.read(a.write(session)) == session
    assert SessionCodec(tmp_path / "other.secret").read(a.write(session)) is None


def test_a_shipment_case_shows_its_schedule_and_reasons_without_invoice_forms(tmp_path):
    runtime = make_runtime(f"sqlite:///{tmp_path}/ship.db", StubDelayScorer({"AA": 0.72, "DL": 0.31}))
    runtime.decisions.decide_shipments([ShipmentIn.model_validate({**SHIPMENT, "declared_value": 80000})])
    keys = make_keys(runtime.engine)
    world = {"app": create_web_app(lambda: runtime, secret_file=tmp_path / "s", facts=None), "keys": keys}
    client = _signed_in(world)
    queue = client.get("/?queue=dispatch").text
    case_id = re.search(r'href="/cases/([^"]+)">Shipment S-1<', queue).group(1)
    page = client.get(f"/cases/{case_id}").text
    assert "Late delivery risk (72%)" in page and "Scheduled departure" in page and "2013-12-02 19:00 UTC" in page
    assert "Shipments stuck at the origin" in page and "points towards a late delivery" in page
    assert "review-high-value-at-risk" in page and "Invoice lines" not in page
    token = _csrf(page)
    client.post(f"/cases/{case_id}/claim", data={"csrf_token": token})
    held = client.get(f"/cases/{case_id}").text
    assert "Approve as billed" in held and "Dispute with the carrier" in held
    assert "Approve an adjusted amount" not in held and "Confirm the discrepancy class" not in held


FACTS_CSV = (
    "shipment_id,mode,carrier,origin,destination,distance_miles,ship_date,scheduled_departure,scheduled_arrival,"
    "actual_departure,actual_arrival,cancelled,proof_of_delivery_at,pieces,actual_weight_kg,length_cm,width_cm,"
    "height_cm,consignee_pickup_at,dwell_hours,dangerous_goods,delivery_attempts,requested_services\n"
    "SHP-1,air,UA,EWR,ORD,719,2013-12-02,2013-12-02T14:00:00Z,2013-12-02T18:40:00Z,2013-12-02T14:05:00Z,"
    "2013-12-02T19:05:00Z,false,2013-12-03T14:25:00Z,3,410,,,,2013-12-03T10:00:00Z,15,false,1,delivery\n")


@pytest.mark.integration
def test_reference_shipment_facts_come_from_the_feature_store(world, tmp_path):
    from features.store import StoreSettings
    from serving.web.evidence import feast_facts
    from training.load_job import load_reference

    (tmp_path / "facts.csv").write_text(FACTS_CSV)
    runtime = world["runtime"]
    runtime.store_settings = StoreSettings(repo_dir=tmp_path / "repo")
    load_reference("shipments", tmp_path / "facts.csv", settings=runtime.store_settings)
    client = _signed_in({**world, "app": create_web_app(lambda: runtime, secret_file=world["secret"],
                                                        facts=feast_facts)})
    page = client.get(f"/cases/{world['cases']['INV-OVER']}").text
    facts = page[page.index('data-testid="shipment-facts"'):page.index("Service events")]
    assert "Proof of delivery at</dt><dd>2013-12-03 14:25 UTC" in facts
    assert "Consignee pickup at</dt><dd>2013-12-03 10:00 UTC" in facts and "Requested services" in facts
    assert "Reference facts:" not in facts
