"""axe-core on every page each role reaches by following links (after the journeys filled the service), at a
desktop width and a phone's: no violation of any kind. Pages of one shape (/learner/attempts/<n>) are checked once."""

import re
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest

from tests.browser.conftest import add_account, require_browser, sign_in, sign_in_as

require_browser()

from axe_playwright_python.sync_playwright import Axe  # noqa: E402

WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
MAX_PAGES = 30
ADMIN_PASSWORD = "an operator's long passphrase"
# Links that leave the HTML pages or change something when followed.
SKIPPED = re.compile(r"(/logout|\.pdf$|\.json$|\.png$|\.svg$|\.jwt$|/download|/static/|/status/|/\.well-known/"
                     r"|/lti/|/hooks/|format=|/api/)")


def shape(path: str) -> str:
    """/learner/attempts/12 and /learner/attempts/13 are one page to check; so are two files of the code view."""
    path = re.sub(r"/\d+(?=/|$)", "/<n>", path)
    path = re.sub(r"/[0-9a-f-]{36}(?=/|$)", "/<id>", path)
    return re.sub(r"(/code/).+$", r"\1<file>", path)


def crawl(page, start: str, base: str) -> list[str]:
    seen, queue, found = set(), [start], []
    while queue and len(found) < MAX_PAGES:
        url = queue.pop(0)
        key = shape(urlsplit(url).path)
        if key in seen:
            continue
        seen.add(key)
        response = page.goto(url)
        if response is None or response.status >= 400 or "text/html" not in (response.headers.get("content-type") or ""):
            continue
        found.append(url)
        for href in page.locator("a[href]").evaluate_all("links => links.map(a => a.getAttribute('href'))"):
            target = urldefrag(urljoin(url, href))[0]
            if target.startswith(base) and not SKIPPED.search(target) and shape(urlsplit(target).path) not in seen:
                queue.append(target)
    return found


def violations(axe, page) -> list[str]:
    results = axe.run(page)
    return [f"{item['id']} ({item['impact']}): {item['help']} at {node['target']}"
            for item in results.response["violations"] for node in item["nodes"][:3]]


@pytest.mark.parametrize("role", [None, "learner", "mentor", "admin"])
def test_every_page_has_no_axe_violation_on_a_desktop_and_a_phone(live_server, browser, role):
    base = live_server.url
    axe = Axe()
    problems = {}
    context = browser.new_context(viewport=WIDTHS["desktop"])
    try:
        page = context.new_page()
        if role == "admin":
            add_account(live_server, "operator@example.org", ADMIN_PASSWORD, role="admin", name="Course Operator")
            sign_in_as(page, live_server, "operator@example.org", ADMIN_PASSWORD)
        elif role:
            sign_in(page, live_server, role)
        start = {None: base, "learner": base + "learner/", "mentor": base + "mentor/", "admin": base + "admin/"}
        pages = crawl(page, start[role], base)
        assert len(pages) >= (3 if role is None else 5), pages
        for url in pages:
            for width, viewport in WIDTHS.items():
                page.set_viewport_size(viewport)
                page.goto(url)
                found = violations(axe, page)
                if found:
                    problems[f"{urlsplit(url).path} at {width}"] = found
    finally:
        context.close()
    assert not problems, "\n".join(f"{where}:\n  " + "\n  ".join(found) for where, found in problems.items())
