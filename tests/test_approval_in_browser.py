"""The review link from the email, opened and clicked in a real browser (Debian's headless Chromium)."""

from __future__ import annotations

import shutil

import pipeline
import pytest
from asl import ROOT

from local_runtime import actions
from local_runtime.stack import LocalDeployment

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    if not shutil.which("chromium"):
        pytest.skip("SKIPPED LOUDLY: Debian's chromium is not installed (make test installs it under CI=true)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def stack():
    with LocalDeployment(ROOT, overrides={"StatusPollSeconds": "1"}) as local:
        yield local


def test_reviewer_approves_in_the_browser_and_the_run_deploys(browser, stack, tmp_path) -> None:
    # Data preparation, training and the endpoint come from the mock config; the review is real.
    arn = pipeline.start_test_case(stack, "ReviewInBrowser", {})
    link = actions.review_link(pipeline.review_email(stack)["Message"])
    page = browser.new_page()
    page.goto(link)
    assert page.title().startswith("Review model mlops-mocked-run")
    assert page.locator("#candidate-accuracy").inner_text() == "0.9700"
    assert page.locator("#production-accuracy").inner_text() == "n/a"
    page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
    page.fill("input[name=reviewer]", "Browser Reviewer")
    page.fill("textarea[name=comment]", "looks <good> & safe")
    page.click("button.approve")
    assert "You approved this model" in page.locator("#outcome").inner_text()
    assert "looks <good> & safe" in page.content().replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    page.screenshot(path=str(tmp_path / "approved.png"), full_page=True)

    view = pipeline.finish(stack, arn)
    assert view.status == "SUCCEEDED" and pipeline.output(stack, arn)["outcome"] == "deployed"
    assert pipeline.registry(stack)[("MODEL", "mlops-mocked-run")]["approvedBy"] == "Browser Reviewer"

    page.goto(link)
    assert "Already decided: approved by Browser Reviewer" in page.locator("#outcome").inner_text()
    assert page.locator("button.approve").count() == 0
    page.screenshot(path=str(tmp_path / "already-decided.png"), full_page=True)
    page.close()
