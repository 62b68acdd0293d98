"""The review queue in a real browser: `bentoml serve` on a free loopback port, headless Debian Chromium.

A reviewer signs in with their key, opens the queue, claims the top case, disputes it, and sees it leave
the open queue and appear, with their name, in the case history. The case page is kept as a screenshot
under var/test-artifacts/ (gitignored) for people to look at.
"""

import os
import re
from pathlib import Path

import httpx
import pytest

from serving.launch import ROOT, LaunchError, Launched
from tests.serving.conftest import StubDelayScorer, make_runtime
from tests.serving.queue_cases import make_keys, seed_cases

pytestmark = pytest.mark.integration
CHROMIUM = Path(os.environ.get("TOLLGATE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "var" / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The whole service (API under /v1, queue under /queue) over a database holding three open cases."""
    root = tmp_path_factory.mktemp("queue-browser")
    url = f"sqlite:///{root}/tollgate.db"
    runtime = make_runtime(url, StubDelayScorer({}))
    cases, keys = seed_cases(runtime), make_keys(runtime.engine)
    runtime.engine.dispose()
    env = {**os.environ, "TOLLGATE_DATABASE_URL": url, "TOLLGATE_WEB_SECRET_FILE": str(root / "web.secret"),
           "TOLLGATE_MLFLOW_URI": f"sqlite:///{root}/mlflow.db", "TOLLGATE_FEAST_REPO": str(root / "repo"),
           "BENTOML_HOME": str(root / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    server = Launched.bentoml(env=env, log=root / "serve.log")
    try:
        server.wait("/queue/sign-in")
    except LaunchError as exc:
        pytest.fail(f"the queue page never came up: {exc}")
    yield {"base": server.base, "cases": cases, "keys": keys}
    server.stop()


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: run .ci/ensure-chromium (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_reviewer_claims_the_top_case_resolves_it_and_sees_it_in_the_history(served, browser):
    base = served["base"]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/queue")
    assert page.url.endswith("/queue/sign-in")
    page.get_by_label("API key").fill(served["keys"]["reviewer"])
    with page.expect_navigation():
        page.get_by_label("API key").press("Enter")  # a keyboard submits the form
    assert page.url == f"{base}/queue/"
    assert page.get_by_test_id("reviewer-name").inner_text() == "Rita Reviewer"

    rows = page.locator("[data-testid=queue-table] tbody tr")
    assert rows.count() == 3
    top = rows.first
    assert "INV-OVER" in top.inner_text() and "$520.00" in top.inner_text()
    with page.expect_navigation():
        top.get_by_role("link").click()
    assert page.get_by_role("heading", name="Invoice INV-OVER").is_visible()
    linehaul = page.get_by_test_id("charges").get_by_role("row", name=re.compile(r"^Linehaul"))
    assert "+$400.00 over" in linehaul.inner_text() and "diff" in linehaul.get_attribute("class")

    page.get_by_role("button", name="Claim this case").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_test_id("notice").inner_text() == "You hold this case now."
    assert "Claimed" in page.get_by_test_id("case-status").inner_text()
    assert "Rita Reviewer" in page.get_by_test_id("history").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "queue-case-page.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"case page screenshot: {shot}")

    dispute = page.get_by_role("group", name="Dispute with the carrier")
    dispute.get_by_label("Amount disputed ($)").fill("493.00")
    dispute.get_by_label("Reason code").select_option("rate_not_per_contract")
    dispute.get_by_label("Note (optional)").fill("Linehaul billed at last year's rate")
    with page.expect_navigation():
        dispute.get_by_role("button", name="Dispute").click()
    assert page.get_by_test_id("notice").inner_text() == "Verdict recorded."
    assert page.get_by_test_id("case-status").inner_text() == "Resolved"
    history = page.get_by_test_id("history").inner_text()
    assert "Resolved" in history and "Dispute opened" in history and "$493.00" in history
    assert history.count("Rita Reviewer") >= 2  # the claim and the verdict both carry her name
    page.screenshot(path=str(ARTIFACTS / "queue-case-resolved.png"), full_page=True)

    with page.expect_navigation():
        page.get_by_role("link", name="Back to the queue").click()
    remaining = page.locator("[data-testid=queue-table] tbody").inner_text()
    assert "INV-OVER" not in remaining and "INV-BIG" in remaining
    page.get_by_label("Status").select_option("resolved")
    with page.expect_navigation():
        page.get_by_role("button", name="Apply filters").click()
    assert "status=resolved" in page.url
    assert "INV-OVER" in page.locator("[data-testid=queue-table] tbody").inner_text()
    assert shot.stat().st_size > 10_000
    paths = httpx.get(f"{base}/docs.json", timeout=10).json()["paths"]
    assert "/v1/reviews" in paths and not any(p.startswith("/queue") for p in paths)  # pages stay out of the API docs
