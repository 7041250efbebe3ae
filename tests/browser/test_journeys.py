"""The three journeys in a real browser against `assessor demo` with its real worker: learner (submit the passing
sample, watch the stages, read the report, self-assess partly by keyboard), mentor (queue, review, approve),
employer (verify page from the link, upload the PDF; a forged PDF is caught). Plus login failures, phone width and
labels on every form field."""

import io
import json
import re
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from assessor.samples import create_sample_repo
from tests.browser.conftest import ARTIFACTS, require_browser, shoot, sign_in
from tests.copies import reorder

require_browser()
from playwright.sync_api import Error as PlaywrightError  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.slow

RUBRIC_ID = "scalable-architectures-resilient-core"
ASSESSMENT_TIMEOUT_MS = 240_000
PHONE = {"width": 390, "height": 844}

# Every visible form control without a label: <label for>, a wrapping <label>, aria-label or aria-labelledby.
UNLABELLED_JS = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => !['hidden', 'submit', 'button', 'reset', 'image'].includes((el.type || '').toLowerCase()))
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
  .map(el => el.outerHTML.slice(0, 120))"""


def unlabelled(page) -> list[str]:
    return page.evaluate(UNLABELLED_JS)


def assert_labelled(page) -> None:
    assert unlabelled(page) == [], f"form fields without a label on {page.url}"


@pytest.fixture(scope="module")
def journey(live_server, browser):
    """State the journey's steps hand on (attempt URL, certificate), filled in by the tests in file order."""
    return {}


def test_learner_submits_watches_the_stages_reads_the_report_and_self_assesses(live_server, context, page, journey):
    sign_in(page, live_server, "learner")
    expect(page).to_have_url(re.compile(r"/learner/$"))
    page.get_by_role("link", name=re.compile("submit", re.I)).first.click()
    assert_labelled(page)
    page.get_by_label("Course rubric").select_option(RUBRIC_ID)
    page.get_by_label("Repository URL").fill(live_server.repos["passing"])
    page.get_by_role("button", name="Submit for assessment").click()
    expect(page).to_have_url(re.compile(r"/learner/attempts/\d+$"))
    attempt_url = page.url
    journey["attempt_url"] = attempt_url

    # The status page follows the worker by itself: no reload from the test.
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    shoot(page, "learner-status-early")
    seen = []
    finished = page.locator("#progress[data-finished='true']")  # rendered by the server once it has finished
    deadline = time.monotonic() + ASSESSMENT_TIMEOUT_MS / 1000
    while not finished.count() and time.monotonic() < deadline:
        try:
            text = page.locator("#status-text").inner_text(timeout=2000).strip()
        except PlaywrightError:  # between the old page and the reloaded one
            continue
        if not seen or seen[-1] != text:
            seen.append(text)
        page.wait_for_timeout(250)
    expect(finished).to_have_count(1)
    expect(page.locator("#status-text")).to_have_text("scored")
    assert all(url == attempt_url for url in navigations)  # only status.js's own reload of this page
    assert page.locator("ol.stages li:not(.stage-done)").count() == 0
    print("status seen while waiting:", " -> ".join(seen))

    # The report.
    expect(page.get_by_role("heading", name=re.compile("Status"))).to_be_visible()
    body = page.locator("main").inner_text() if page.locator("main").count() else page.inner_text("body")
    assert "Test coverage of the service code" in body
    assert "awaiting review" in body
    page.wait_for_load_state("networkidle")
    shoot(page, "readme-report", full_page=False)

    # The self-assessment: the first criterion by keyboard alone, the rest by pointer.
    page.get_by_role("link", name=re.compile("self-assessment", re.I)).click()
    expect(page.get_by_role("heading", name=re.compile("Self-assessment"))).to_be_visible()
    assert_labelled(page)
    first_radio = page.locator("input[type=radio]").first
    first_group = first_radio.get_attribute("name")
    page.locator("h1").click()  # start from the page, not from a field
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement && document.activeElement.name") == first_group:
            break
    else:
        pytest.fail("Tab never reached the first level choice")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")  # moves to (and picks) the next level
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.tagName") == "TEXTAREA"
    page.keyboard.type("Chosen with the keyboard: the suite runs green and has plenty of tests.")
    expect(page.locator(f"input[name='{first_group}']").nth(1)).to_be_checked()

    # A draft first: it comes back as typed, and the mentor does not see it yet.
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("Draft saved")
    expect(page.locator(f"input[name='{first_group}']").nth(1)).to_be_checked()
    fieldsets = page.locator("fieldset.criterion")
    for index in range(1, fieldsets.count()):
        fieldset = fieldsets.nth(index)
        fieldset.locator("input[type=radio]").last.check()
        fieldset.locator("textarea").fill("The documents and the code show it; see the report.")
    page.get_by_role("button", name="Submit self-assessment").click()
    expect(page.get_by_role("status")).to_contain_text("self-assessment is submitted")
    expect(page).to_have_url(attempt_url)


def test_the_learner_opens_the_capstone_from_the_course_in_the_lms(live_server, browser, lms, journey):
    if "attempt_url" not in journey:
        pytest.skip("the learner's submission did not complete")
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(lms.course_page("learner", f"resource:{RUBRIC_ID}"))
        page.get_by_role("link", name="Open the capstone").click()  # login, the LMS's form, the signed launch
        expect(page).to_have_url(re.compile(rf"/learner/submit\?rubric={RUBRIC_ID}$"))
        # the LMS's learner is the demo learner (the same e-mail), signed in without a password
        expect(page.get_by_role("button", name=re.compile("Sign out"))).to_contain_text(
            live_server.accounts["learner"][0])
        journey["lms"] = True
    finally:
        context.close()


def test_mentor_reviews_and_approves_on_the_dashboard(live_server, browser, page, journey, lms):
    attempt_url = journey.get("attempt_url")
    if not attempt_url:
        pytest.skip("the learner journey did not submit an attempt")
    attempt_id = attempt_url.rstrip("/").rsplit("/", 1)[-1]
    sign_in(page, live_server, "mentor")
    expect(page).to_have_url(re.compile(r"/mentor/$"))
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    assert_labelled(page)
    row = page.locator("table.queue tbody tr", has=page.locator(f"a[href$='/mentor/attempts/{attempt_id}']"))
    expect(row).to_contain_text("Demo Learner")
    expect(row).to_contain_text("yes")  # self-assessed
    expect(row).to_contain_text("%")       # the measured score
    expect(row).to_contain_text("min")     # how long it has waited
    row.get_by_role("link", name=re.compile(r"Attempt \d+")).click()
    page.get_by_role("button", name="Start review").click()
    expect(page.get_by_role("status")).to_contain_text("Review started")
    assert_labelled(page)
    review_url = page.url

    # A comment on a line of the code, by keyboard: a line number is a link; Enter opens the form under it.
    page.get_by_role("link", name="Code view", exact=True).click()
    page.locator(".file-list a").first.click()
    code_url = page.url
    page.locator("a[data-line='2']").focus()
    page.keyboard.press("Enter")
    expect(page.locator("tr.comment-form-row #body")).to_be_focused()
    expect(page.locator("#start_line")).to_have_value("2")
    page.keyboard.type("Name this for what it holds.")
    page.get_by_label("Criterion").select_option(index=1)
    shoot(page, "mentor-line-comment", full_page=False)
    page.get_by_role("button", name="Save comment").click()
    expect(page.get_by_role("status")).to_contain_text("Comment saved")
    expect(page.locator("tr.line-comment")).to_contain_text("Name this for what it holds.")
    journey["code_url"] = code_url
    page.goto(review_url)
    expect(page.locator("details.code-comments")).to_contain_text("Name this for what it holds.")

    pickers = page.locator("fieldset.level-picker")
    approve = page.locator("#decision-bar").get_by_role("button", name="Approve")
    expect(approve).to_be_disabled()  # criteria only a mentor judges have no level yet, and the bar says so
    expect(page.locator("#approve-blocked")).to_contain_text("To approve: set a level for")
    for index in range(pickers.count()):
        picker = pickers.nth(index)
        criterion = picker.get_attribute("data-criterion")
        if picker.locator("input:checked").count() == 0:  # a criterion only a mentor judges: its top level
            top = picker.locator("input[type=radio]").last
            if index % 2:  # by its number key, as a mentor grading fast would
                picker.locator("input[type=radio]").first.focus()
                page.keyboard.press(top.get_attribute("data-key"))
            else:  # by a click on the level's whole descriptor
                picker.locator("label.level-choice").last.click()
            expect(top).to_be_checked()
        page.locator(f"#comment-{criterion}").fill("Clear and well argued.")
    expect(approve).to_be_enabled()
    page.get_by_label(re.compile("Overall comment")).fill("A solid capstone. Approved.")
    page.evaluate("() => window.scrollTo(0, 0)")
    # The decision bar and its score stay in view from the first criterion on.
    expect(page.locator("#decision-bar")).to_be_in_viewport()
    expect(page.locator("#live-score")).to_contain_text("%")
    shoot(page, "readme-mentor-review", full_page=False)
    page.locator("#decision-bar").get_by_role("button", name="Approve").click()
    dialog = page.locator("#approve-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("certificate")
    shoot(page, "mentor-approve-dialog", full_page=False)
    dialog.get_by_role("button", name="Yes, approve").click()
    expect(page.get_by_role("status")).to_contain_text("Approved")

    learner_context = browser.new_context(accept_downloads=True)
    learner = learner_context.new_page()
    try:
        sign_in(learner, live_server, "learner")
        learner.goto(attempt_url)
        expect(learner.locator("#review-h")).to_contain_text("approved")
        expect(learner.locator("body")).to_contain_text("Final score")
        expect(learner.locator("section.code-comments")).to_contain_text("Name this for what it holds.")
        shoot(learner, "learner-approved")
    finally:
        learner_context.close()
    journey["approved"] = True
    if journey.get("lms"):  # the learner came from the LMS: the final score goes back to its gradebook
        deadline = time.monotonic() + 60
        while not lms.scores and time.monotonic() < deadline:
            time.sleep(0.5)
        assert lms.scores and lms.scores[-1]["userId"] == "lms-learner-1", lms.scores
        assert lms.scores[-1]["scoreMaximum"] == 100 and lms.scores[-1]["gradingProgress"] == "FullyGraded"


def test_learner_downloads_the_certificate_and_an_employer_verifies_it(live_server, browser, page, journey):
    if not journey.get("approved"):
        pytest.skip("the mentor journey did not approve the attempt")
    sign_in(page, live_server, "learner")
    page.goto(journey["attempt_url"])
    download_link = page.get_by_role("link", name="Download the PDF")
    for _ in range(60):  # the worker issues the certificate just after the approval
        if download_link.count():
            break
        page.wait_for_timeout(1000)
        page.reload()
    expect(download_link).to_be_visible()
    with page.expect_download() as download_info:
        download_link.click()
    pdf = download_info.value.path().read_bytes()
    assert pdf.startswith(b"%PDF-")
    journey["pdf"] = pdf
    (ARTIFACTS / "certificate.pdf").write_bytes(pdf)  # for the README's picture of the certificate
    verify_link = page.get_by_label("Verify link").input_value()
    expect(page.locator('button[data-copy="verify-link"]')).to_be_visible()  # shown once its script runs
    # keeping it in a wallet: the link a wallet imports, its QR code, and the file
    wallet_link = page.get_by_role("textbox", name="Wallet link").input_value()
    assert wallet_link.endswith("/credential.json")
    expect(page.locator("#wallet .wallet-qr svg")).to_be_visible()
    with page.expect_download() as wallet_download:
        page.get_by_role("link", name="Download the credential (JSON)").click()
    credential = json.loads(wallet_download.value.path().read_text())
    assert credential["proof"]["cryptosuite"] == "eddsa-rdfc-2022" and credential["issuer"]["id"].startswith("did:web:")
    verify_path = urlsplit(verify_link).path
    assert re.fullmatch(r"/verify/[\w-]+", verify_path), verify_link
    journey["verify_path"] = verify_path

    # The employer: no account, a fresh browser.
    employer_context = browser.new_context()
    employer = employer_context.new_page()
    try:
        employer.goto(live_server.url.rstrip("/") + verify_path)
        expect(employer.locator("body")).to_contain_text("Demo Learner")
        # the course modules the demo recorded for its learner, beside the capstone
        expect(employer.locator("#modules")).to_contain_text("Caching with Redis and HTTP cache strategies")
        assert_labelled(employer)
        employer.wait_for_load_state("networkidle")
        shoot(employer, "readme-verify-page", full_page=False)
        employer.goto(live_server.url + "verify")
        assert_labelled(employer)
        employer.get_by_label(re.compile("Certificate PDF")).set_input_files(
            files=[{"name": "certificate.pdf", "mimeType": "application/pdf", "buffer": pdf}])
        employer.get_by_role("button", name="Check").click()
        expect(employer.locator("[data-verdict]")).to_have_attribute("data-verdict", "valid")
        expect(employer.locator("#verdict")).to_contain_text("Valid")
        journey["genuine_colour"] = employer.locator("#verdict").evaluate("e => getComputedStyle(e).borderTopColor")
        shoot(employer, "readme-verify-upload")
    finally:
        employer_context.close()


def test_a_forged_certificate_is_not_valid(live_server, page, journey):
    pdf = journey.get("pdf")
    if not pdf:
        pytest.skip("no certificate was downloaded in the journey")
    from pypdf import PdfReader, PdfWriter

    # The forger opens the PDF in an editor and saves it with a changed title.
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.add_metadata({"/Title": "Certificate of Excellence (edited)"})
    forged = io.BytesIO()
    writer.write(forged)
    page.goto(live_server.url + "verify")
    page.get_by_label(re.compile("Certificate PDF")).set_input_files(
        files=[{"name": "certificate.pdf", "mimeType": "application/pdf", "buffer": forged.getvalue()}])
    page.get_by_role("button", name="Check").click()
    verdict = page.locator("[data-verdict]")
    expect(verdict).to_be_visible()
    assert verdict.get_attribute("data-verdict") != "valid"
    expect(page.locator("#verdict")).not_to_contain_text("Valid")
    # not the same grey box as a genuine one: its own colour and icon
    colour = page.locator("#verdict").evaluate("e => getComputedStyle(e).borderTopColor")
    assert colour != journey.get("genuine_colour") and colour != "rgb(217, 217, 222)"
    expect(page.locator("#verdict .verdict-icon")).to_have_text(re.compile("[✗!]"))
    # the credential inside is still ours: the employer is led to the genuine record
    original = page.locator("#original a")
    expect(original).to_be_visible()
    assert "/verify/" in original.get_attribute("href")
    # plain words first, the technical checks folded; on a phone nothing widens the page
    expect(page.locator(".plain-checks")).to_contain_text("The PDF file")
    expect(page.locator("details.technical")).not_to_have_attribute("open", "")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_sign_in_failures_say_what_went_wrong(live_server, page):
    email, password = live_server.accounts["learner"]
    page.goto(live_server.url + "login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password + "-wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong e-mail address or password")
    expect(page).to_have_url(re.compile(r"/login$"))

    page.get_by_label("E-mail").fill("nobody@example.org")
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong e-mail address or password")

    page.get_by_label("E-mail").fill("")
    page.get_by_label("Password").fill("")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("body")).to_contain_text("enter your e-mail address")
    assert_labelled(page)

    # And a protected page sends a signed-out visitor to sign in.
    page.goto(live_server.url + "mentor/")
    expect(page).to_have_url(re.compile(r"/login"))


def _no_horizontal_scroll(page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    if width > PHONE["width"]:
        shoot(page, f"phone-overflow-{urlsplit(url).path.strip('/').replace('/', '-') or 'root'}")
    assert width <= PHONE["width"], f"{url} is {width} px wide at a {PHONE['width']} px viewport"


def test_pages_fit_a_phone_screen(live_server, browser, journey):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        for path in ("login", "signup", "verify", journey.get("verify_path", "").lstrip("/")):
            if path:
                _no_horizontal_scroll(page, live_server.url + path)
        sign_in(page, live_server, "learner")
        learner_pages = [live_server.url + "learner/", live_server.url + "learner/submit"]
        if journey.get("attempt_url"):
            learner_pages += [journey["attempt_url"], journey["attempt_url"] + "/self-assessment"]
        if journey.get("code_url"):
            learner_pages.append(journey["code_url"])
        for url in learner_pages:
            _no_horizontal_scroll(page, url)
        shoot(page, "phone-learner-attempt")
        page.context.clear_cookies()
        sign_in(page, live_server, "mentor")
        mentor_pages = [live_server.url + "mentor/"]
        if journey.get("attempt_url"):
            mentor_pages.append(live_server.url + "mentor/attempts/" + journey["attempt_url"].rsplit("/", 1)[-1])
        for url in mentor_pages:
            _no_horizontal_scroll(page, url)
        shoot(page, "phone-mentor-review")
    finally:
        context.close()


def test_every_form_field_has_a_label(live_server, page):
    for path in ("login", "signup", "verify"):
        page.goto(live_server.url + path)
        assert_labelled(page)
    sign_in(page, live_server, "learner")
    for path in ("learner/", "learner/submit"):
        page.goto(live_server.url + path)
        assert_labelled(page)


def test_the_checker_finds_an_unlabelled_field(page):
    """The label check itself: it must catch a field with no label."""
    page.set_content("<form><label for=a>A</label><input id=a><input id=b name=b>"
                     "<label>C <input name=c></label><input aria-label=D><select name=e></select></form>")
    found = unlabelled(page)
    assert len(found) == 2 and 'id="b"' in found[0] and 'name="e"' in found[1]


# WCAG 2 contrast of every piece of visible text against its effective background (opaque ancestors only).
LOW_CONTRAST_JS = """() => {
  const parse = c => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const background = el => { for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a >= 0.99) return c; }
    return {r: 255, g: 255, b: 255, a: 1}; };
  const low = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || parseFloat(style.opacity) === 0) continue;
    const fg = parse(style.color), bg = background(el);
    const a = lum(fg), b = lum(bg), ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const needed = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    if (ratio < needed) low.push(`${el.tagName.toLowerCase()}.${el.className}: ${ratio.toFixed(2)} < ${needed} ` +
                                 `"${el.textContent.trim().slice(0, 40)}"`);
  }
  return low;
}"""


def test_text_is_readable_contrast(live_server, page, journey):
    pages = [live_server.url + "login", live_server.url + "verify"]
    if journey.get("verify_path"):
        pages.append(live_server.url + journey["verify_path"].lstrip("/"))
    for url in pages:
        page.goto(url)
        assert page.evaluate(LOW_CONTRAST_JS) == [], url
    sign_in(page, live_server, "learner")
    for url in [live_server.url + "learner/", journey.get("attempt_url")]:
        if url:
            page.goto(url)
            assert page.evaluate(LOW_CONTRAST_JS) == [], url
    page.context.clear_cookies()
    sign_in(page, live_server, "mentor")
    page.goto(live_server.url + "mentor/")
    assert page.evaluate(LOW_CONTRAST_JS) == [], page.url
    if journey.get("attempt_url"):
        attempt_id = journey["attempt_url"].rsplit("/", 1)[-1]
        for path in (f"mentor/attempts/{attempt_id}", f"attempts/{attempt_id}/code", "mentor/calibration"):
            page.goto(live_server.url + path)
            assert page.evaluate(LOW_CONTRAST_JS) == [], page.url
    if journey.get("code_url"):
        page.goto(journey["code_url"])  # highlighted code, coverage marks and a comment card
        assert page.evaluate(LOW_CONTRAST_JS) == [], page.url


def test_focus_is_visible_when_tabbing(live_server, page):
    """Keyboard users see where they are: every control reached by Tab on the sign-in page shows a focus ring."""
    page.goto(live_server.url + "login")
    page.locator("h1").click()
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        state = page.evaluate("""() => { const el = document.activeElement; const s = getComputedStyle(el);
          return {tag: el.tagName, text: (el.name || el.textContent || '').trim().slice(0, 30),
                  ring: (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none'}; }""")
        if state["tag"] == "BODY":
            break
        reached.append(state)
    names = [state["text"] for state in reached]
    assert "email" in names and "password" in names and "Sign in" in names, names
    assert [state for state in reached if not state["ring"]] == []


def test_the_contrast_checker_finds_faint_text(page):
    page.set_content("<body style='background:#fff'><p style='color:#111'>dark enough</p>"
                     "<p style='color:#bbb'>too faint</p><div style='background:#222'><span style='color:#eee'>light "
                     "on dark</span></div><h1 style='color:#949494;font-size:32px'>large</h1></body>")
    found = page.evaluate(LOW_CONTRAST_JS)
    assert len(found) == 1 and "too faint" in found[0]


def wait_until_finished(page) -> None:
    finished = page.locator("#progress[data-finished='true']")
    deadline = time.monotonic() + ASSESSMENT_TIMEOUT_MS / 1000
    while not finished.count() and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    expect(finished).to_have_count(1)


def test_a_node_typescript_capstone_is_assessed_end_to_end(live_server, page):
    """The Scalable Architectures course is taught in Node.js: its sample is assessed like a Python one."""
    sign_in(page, live_server, "learner")
    page.goto(live_server.url + f"learner/submit?rubric={RUBRIC_ID}")
    page.get_by_label("Repository URL").fill(live_server.repos["node-passing"])
    page.get_by_role("button", name="Submit for assessment").click()
    expect(page).to_have_url(re.compile(r"/learner/attempts/\d+$"))
    wait_until_finished(page)
    expect(page.locator("#status-text")).to_have_text("scored")
    run = page.locator("section.run-notes")
    expect(run).to_contain_text("Node")
    expect(run).to_contain_text("redis")
    body = page.locator("main").inner_text()
    assert "42 passed, 0 failed" in body
    assert "no maintainability index (lizard" in body
    shoot(page, "node-report")


def test_a_failing_test_is_shown_with_its_message_and_a_new_submission_asks_before_replacing(live_server, page):
    sign_in(page, live_server, "learner")
    page.goto(live_server.url + f"learner/submit?rubric={RUBRIC_ID}")
    page.get_by_label("Repository URL").fill(live_server.repos["falling-short"])
    replace = page.get_by_label(re.compile("Replace the attempt waiting for review"))
    page.get_by_role("button", name="Submit for assessment").click()
    if replace.count():  # an earlier journey left an attempt waiting for review: replace it, on purpose
        replace.check()
        page.get_by_role("button", name="Submit for assessment").click()
    expect(page).to_have_url(re.compile(r"/learner/attempts/\d+$"))
    wait_until_finished(page)
    # The first screen names the failing test with its whole message, and what gains the most points.
    page.evaluate("() => window.scrollTo(0, 0)")
    summary = page.locator("#summary")
    expect(summary.locator(".first-failures")).to_contain_text("test_an_item_at_the_threshold_is_reported_low")
    expect(summary.locator(".first-failures")).to_be_in_viewport()
    expect(summary.locator(".gains")).to_contain_text("needed to pass")
    assert "gate '" not in summary.inner_text() and "-vv" not in summary.inner_text()
    shoot(page, "learner-failing-first-screen", full_page=False)
    failures = page.locator("section.failures")
    expect(failures).to_contain_text("test_an_item_at_the_threshold_is_reported_low")
    expect(failures.locator("pre")).to_contain_text("assert")  # pytest's own assertion message
    shoot(page, "learner-failing-test")
    failures.get_by_role("link", name=re.compile(r"test_reporting\.py:\d+")).click()
    expect(page.locator("tr:target")).to_contain_text("def test_an_item_at_the_threshold_is_reported_low")
    page.go_back()

    # It cannot pass as it stands, so it waits for the learner: sent to the mentor only on request.
    expect(page.locator("dl.facts").first).to_contain_text("not sent to review")
    page.get_by_role("button", name="Ask your mentor for feedback").click()
    expect(page.get_by_role("status")).to_contain_text("in your mentor's queue")
    # "Submit again" brings the repository along
    page.get_by_role("link", name="Submit again").click()
    # the address as it was stored (a local path becomes its file:// URL)
    expect(page.get_by_label("Repository URL")).to_have_value(re.compile(re.escape(live_server.repos["falling-short"]) + "$"))
    expect(page.locator(f".rubric-preview[data-rubric='{RUBRIC_ID}']")).to_be_visible()

    # This attempt now waits for review: another submission warns and changes nothing until the learner agrees.
    page.goto(live_server.url + f"learner/submit?rubric={RUBRIC_ID}")
    page.get_by_label("Repository URL").fill(live_server.repos["passing"])
    page.get_by_role("button", name="Submit for assessment").click()
    expect(page.locator("#replace-warning")).to_contain_text("is waiting for a mentor's review")
    expect(page.locator(".field.invalid")).to_contain_text("Tick the box to replace attempt")
    expect(page).to_have_url(re.compile(r"/learner/submit"))
    shoot(page, "learner-replace-warning")


def test_a_near_copy_by_another_learner_is_flagged_and_compared_side_by_side(live_server, browser, page):
    """A second learner submits the passing sample the first learner submitted, re-committed by them with
    the functions of one module reordered: the mentor's review page flags it, the fragments open side by side,
    on a phone too."""
    copied = create_sample_repo("passing", live_server.instance / "demo" / f"copied-{time.time_ns()}")
    module = copied / "src" / "inventory_service" / "service.py"
    module.write_text(reorder(module.read_text()))
    subprocess.run(["git", "-c", "user.name=Second Learner", "-c", "user.email=second@example.org", "commit", "-qam",
                    "my version"], cwd=copied, check=True, capture_output=True,
                   env={"PATH": "/usr/bin:/bin", "HOME": str(copied), "GIT_CONFIG_GLOBAL": "/dev/null"})
    page.goto(live_server.url + "signup")
    page.get_by_label("E-mail").fill(f"second.learner.{time.time_ns()}@example.org")
    page.get_by_label("Your name (optional)").fill("Second Learner")
    page.get_by_label("Password", exact=True).fill("a long enough passphrase")
    page.get_by_label("Repeat the password").fill("a long enough passphrase")
    page.get_by_role("button", name=re.compile("sign up|create", re.I)).click()
    expect(page).to_have_url(re.compile(r"/learner/$"))

    page.goto(live_server.url + "account")
    assert_labelled(page)
    page.get_by_label("Another address you commit with").fill("second.learner@laptop.example.org")
    page.get_by_label("Another address you commit with").press("Enter")
    expect(page.locator("ul.commit-emails")).to_contain_text("not confirmed")

    page.goto(live_server.url + f"learner/submit?rubric={RUBRIC_ID}")
    page.get_by_label("Repository URL").fill(str(copied))
    page.get_by_role("button", name="Submit for assessment").click()
    expect(page).to_have_url(re.compile(r"/learner/attempts/\d+$"))
    attempt_id = page.url.rsplit("/", 1)[-1]
    wait_until_finished(page)
    assert "near copy" not in page.locator("main").inner_text().lower()  # the learner is not told

    page.context.clear_cookies()
    sign_in(page, live_server, "mentor")
    page.goto(live_server.url + f"mentor/attempts/{attempt_id}")
    banner = page.locator("#integrity")
    expect(banner).to_contain_text("of this submission's code")
    expect(page.locator("details.authorship summary")).to_contain_text("of 2 commits")
    shoot(page, "mentor-integrity-flag")
    banner.get_by_role("link", name="compare side by side").first.click()
    expect(page.locator("h1")).to_have_text("Near copy, side by side")
    first = page.locator("details.fragment").first
    expect(first.locator("table.code")).to_have_count(2)  # both sides shown to this course's mentor
    boxes = [cell.bounding_box() for cell in first.locator(".side-by-side > div").all()]
    assert boxes[0]["x"] < boxes[1]["x"] and abs(boxes[0]["y"] - boxes[1]["y"]) < 2  # next to each other
    shoot(page, "mentor-near-copy-side-by-side")
    compare_url = page.url

    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        small = phone.new_page()
        sign_in(small, live_server, "mentor")
        _no_horizontal_scroll(small, compare_url)
        boxes = [cell.bounding_box() for cell in small.locator("details.fragment").first
                 .locator(".side-by-side > div").all()]
        assert boxes[1]["y"] > boxes[0]["y"]  # stacked on a phone
        shoot(small, "phone-near-copy")
    finally:
        phone.close()
