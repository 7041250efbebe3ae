"""In the browser: a mentor reviews a flagged attempt, and nothing typed is lost on the way (the acknowledgement
refused, then given), and the queue shows the flag."""

import re
import time

from tests.browser.conftest import add_account, require_browser, shoot, sign_in_as, signed_in_elsewhere

require_browser()

from playwright.sync_api import expect  # noqa: E402

RUBRIC_ID = "scalable-architectures-resilient-core"
PASSWORD = "a long learner passphrase 2026"


def submit_and_wait(page, live_server, repo: str) -> str:
    page.goto(live_server.url + f"learner/submit?rubric={RUBRIC_ID}")
    page.get_by_label("Repository URL").fill(repo)
    page.get_by_role("button", name="Submit for assessment").click()
    expect(page).to_have_url(re.compile(r"/learner/attempts/\d+$"))
    attempt_url = page.url
    deadline = time.monotonic() + 240
    while not page.locator("#progress[data-finished='true']").count() and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    expect(page.locator("#status-text")).to_have_text("scored")
    return attempt_url.rstrip("/").rsplit("/", 1)[-1]


def test_a_flagged_review_keeps_everything_typed_when_the_flag_is_acknowledged(live_server, browser, page):
    # Two learners hand in the same commit: the second one's attempt is flagged as the same work.
    for number in (1, 2):
        add_account(live_server, f"twin{number}@example.org", PASSWORD, name=f"Twin Learner {number}")
        with signed_in_elsewhere(browser, live_server, f"twin{number}@example.org", PASSWORD) as learner_page:
            attempt_id = submit_and_wait(learner_page, live_server, live_server.repos["passing"])

    email, password = live_server.accounts["mentor"]
    sign_in_as(page, live_server, email, password)
    page.goto(live_server.url + "mentor/?flags=flagged")
    row = page.locator("table.queue tbody tr", has=page.locator(f"a[href$='/mentor/attempts/{attempt_id}']"))
    expect(row).to_contain_text("same work as another learner")
    row.get_by_role("link", name=re.compile(r"Attempt \d+")).click()
    page.get_by_role("button", name="Start review").click()
    expect(page.locator("#integrity")).to_contain_text("the same work was submitted")

    # The mentor types comments, picks levels, and acknowledges the flag without a reason first.
    pickers = page.locator("fieldset.level-picker")
    typed = {}
    for index in range(pickers.count()):
        criterion = pickers.nth(index).get_attribute("data-criterion")
        typed[criterion] = f"Comment {index} on {criterion}: keep it."
        page.locator(f"#comment-{criterion}").fill(typed[criterion])
        if pickers.nth(index).locator("input:checked").count() == 0:
            pickers.nth(index).locator("label.level-choice").first.click()
    page.get_by_label(re.compile("Overall comment")).fill("Overall: thorough work, one question about authorship.")
    approve = page.locator("#decision-bar").get_by_role("button", name="Approve")
    expect(approve).to_be_disabled()
    expect(page.locator("#approve-blocked")).to_contain_text("reason for going on despite the integrity flag")
    page.get_by_role("button", name="Acknowledge the flag").click()
    expect(page.locator("#integrity-error")).to_contain_text("say why you go on")
    for criterion, text in typed.items():  # refused, and nothing typed is lost
        expect(page.locator(f"#comment-{criterion}")).to_have_value(text)
    expect(page.get_by_label(re.compile("Overall comment"))).to_have_value(
        "Overall: thorough work, one question about authorship.")
    for index in range(pickers.count()):
        expect(pickers.nth(index).locator("input:checked")).to_have_count(1)

    page.get_by_label("Why you go on with this review").fill("Both twins pair-programmed; the course allows it.")
    expect(approve).to_be_enabled()
    page.get_by_role("button", name="Acknowledge the flag").click()
    expect(page.get_by_role("status")).to_contain_text("Flag acknowledged")
    expect(page.locator("#integrity")).to_contain_text("Both twins pair-programmed")
    page.reload()  # saved, not only kept on the page
    for criterion, text in typed.items():
        expect(page.locator(f"#comment-{criterion}")).to_have_value(text)
    page.set_viewport_size({"width": 390, "height": 844})  # on a phone the decision bar leaves room to work
    page.evaluate("() => window.scrollTo(0, 0)")
    expect(page.locator("#decision-bar")).to_be_in_viewport()
    bar = page.locator("#decision-bar").bounding_box()
    assert bar["height"] <= 844 * 0.2, bar
    shoot(page, "phone-review-decision-bar", full_page=False)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + "mentor/")
    expect(page.locator("table.queue tbody tr", has=page.locator(f"a[href$='/mentor/attempts/{attempt_id}']"))
           ).to_contain_text("acknowledged")

    # The mentor asks for changes; the learner asks for a regrade of one criterion, the mentor raises the level.
    page.goto(live_server.url + f"mentor/attempts/{attempt_id}")
    page.locator("#decision-bar").get_by_role("button", name="Request changes").click()
    expect(page.get_by_role("status")).to_contain_text("Changes requested")
    with signed_in_elsewhere(browser, live_server, "twin2@example.org", PASSWORD) as learner_page:
        learner_page.goto(live_server.url + f"learner/attempts/{attempt_id}")
        learner_page.get_by_role("link", name="Ask about this").last.click()
        ask = learner_page.locator("#ask")
        ask.get_by_label("A regrade: I think the level is wrong").check()
        ask.get_by_label("Your question, or why the level should change").fill(
            "The memo in docs/ covers this in its second section.")
        ask.get_by_role("button", name="Send to your mentor").click()
        expect(learner_page.locator("#requests")).to_contain_text("regrade request, open")

    page.goto(live_server.url + "mentor/")
    page.get_by_role("link", name=re.compile(r"Regrade request, attempt \d+")).first.click()
    request = page.locator("li.request-card.open").first
    expect(request).to_contain_text("The memo in docs/ covers this")
    request.get_by_label("Your answer to the learner").fill("Agreed: the second section answers it.")
    request.locator("input[name=level]").last.check()
    new_level = request.locator("input[name=level]").last.get_attribute("value")
    request.get_by_role("button", name="Send the answer").click()
    expect(page.get_by_role("status")).to_contain_text("the level and the final score changed")
    with signed_in_elsewhere(browser, live_server, "twin2@example.org", PASSWORD) as learner_page:
        learner_page.goto(live_server.url + f"learner/attempts/{attempt_id}")
        answered = learner_page.locator("#requests li.request-card")
        expect(answered).to_contain_text(f"→ level {new_level}")
        expect(answered).to_contain_text("Agreed: the second section answers it.")
        shoot(learner_page, "learner-regrade-answered")
