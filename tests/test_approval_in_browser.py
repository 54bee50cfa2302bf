"""The review link from the email, opened and clicked in a real browser (Debian's headless Chromium)."""

from __future__ import annotations

import pipeline
import pytest
from asl import ROOT

from local_runtime import actions
from local_runtime.stack import PROJECT_PARAMETERS, LocalDeployment


@pytest.fixture(scope="module")
def stack():
    with LocalDeployment(ROOT, overrides={**PROJECT_PARAMETERS, "StatusPollSeconds": "1"}) as local:
        yield local


def test_reviewer_approves_in_the_browser_and_the_run_deploys(browser, stack, screenshots) -> None:
    # Data preparation, training and the endpoint come from the mock config; the review is real.
    arn = pipeline.start_test_case(stack, "ReviewInBrowser", {})
    link = actions.review_link(pipeline.review_email(stack)["Message"])
    page = browser.new_page()
    page.goto(link)
    assert page.title().startswith("Review model mlops-mocked-run")
    assert page.locator("#candidate-accuracy").inner_text() == "0.9700"
    assert page.locator("#production-accuracy").inner_text() == "n/a"
    page.screenshot(path=str(screenshots / "first-model-review.png"), full_page=True)
    page.fill("input[name=reviewer]", "Browser Reviewer")
    page.fill("textarea[name=comment]", "looks <good> & safe")
    page.click("button.approve")
    assert "You approved this model" in page.locator("#outcome").inner_text()
    assert "looks <good> & safe" in page.content().replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    page.screenshot(path=str(screenshots / "first-model-approved.png"), full_page=True)

    view = pipeline.finish(stack, arn)
    assert view.status == "SUCCEEDED" and pipeline.output(stack, arn)["outcome"] == "deployed"
    assert pipeline.registry(stack)[("MODEL", "mlops-mocked-run")]["approvedBy"] == "Browser Reviewer"

    page.goto(link)
    assert "Already decided: approved by Browser Reviewer" in page.locator("#outcome").inner_text()
    assert page.locator("button.approve").count() == 0
    page.screenshot(path=str(screenshots / "first-model-already-decided.png"), full_page=True)
    page.close()


def test_reviewer_sees_both_models_side_by_side_and_rejects(browser, stack, screenshots) -> None:
    # The gate's evaluation is mocked with a real one (events/approval_request.json); the page is real.
    registry = stack.client("dynamodb")
    for name, accuracy, day in (("mlops-first", "1", "01"), ("mlops-previous", "0.8333", "08")):
        item = {"pk": {"S": "MODEL"}, "sk": {"S": name}, "accuracy": {"N": accuracy}, "testRows": {"N": "6"},
                "promotedAt": {"S": f"2026-11-{day}T00:00:00Z"}, "status": {"S": "production"}}  # fmt: skip
        registry.put_item(TableName=stack.template.physical_ids["ModelRegistryTable"], Item=item)
    arn = pipeline.start_test_case(stack, "ReviewAgainstProductionInBrowser", {})
    link = actions.review_link(pipeline.review_email(stack)["Message"])
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(link)
    assert page.locator("#production-accuracy").inner_text() == "0.8333"
    for figure in ("#candidate-matrix", "#production-matrix"):
        matrix = page.locator(f"{figure} svg")
        assert matrix.is_visible() and matrix.bounding_box()["width"] > 150
    # The production model called 4 of 8 virginica test rows versicolor: the picture shows the count.
    counts = page.locator("#production-matrix svg text[text-anchor=middle]").all_text_contents()
    assert counts == ["8", "0", "0", "0", "8", "0", "0", "4", "4"]
    assert page.locator("#class-deltas tr.up td").first.inner_text() == "virginica"
    # Every model the registry put in production, oldest first (the first test's model is the newest), then
    # this candidate.
    points = page.locator("figure.chart svg circle title").all_text_contents()
    assert [p.split(":")[0] for p in points] == ["mlops-first", "mlops-previous", "mlops-mocked-run", "this candidate"]
    assert page.locator("#links a").first.get_attribute("href").startswith("https://us-east-1.console.aws.amazon.com/")
    assert page.evaluate("document.scripts.length") == 0
    page.screenshot(path=str(screenshots / "review-against-production.png"), full_page=True)
    page.fill("input[name=reviewer]", "Browser Reviewer")
    page.click("button.reject")
    assert "You rejected this model" in page.locator("#outcome").inner_text()
    assert page.locator("#candidate-matrix svg").is_visible()  # the decided page keeps the evidence
    page.screenshot(path=str(screenshots / "review-against-production-rejected.png"), full_page=True)
    page.close()
    assert pipeline.finish(stack, arn).status == "SUCCEEDED"
    assert pipeline.output(stack, arn)["outcome"] == "rejected"
