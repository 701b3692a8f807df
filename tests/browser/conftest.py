"""Browser tests: the session's app served over real HTTP by werkzeug in a background thread, driven by
Debian's headless Chromium through Playwright (its own browser download is not used).

Set LOYALTY_SCREENSHOTS=1 to write the README's screenshots to docs/screenshots/; without it the
tests take none, so a test run never rewrites committed files."""

import logging
import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.support.portal import use_cheap_password_hashing
from tests.support.servers import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# A phone: the member's, and the size the screenshots are taken at.
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TIMEOUT_MS = 10_000


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    # Sign-up and sign-in hash in the server thread of this same process, so this applies there too.
    use_cheap_password_hashing(monkeypatch)


class LiveServer:
    """The session's app served by werkzeug on a free local port, in a background thread, counting the
    requests it is answering so a test can wait until the server is idle."""

    def __init__(self, app):
        self.app = app
        self._busy = 0
        self._idle = threading.Condition()
        self.server = make_server("127.0.0.1", free_port(), self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="live-server", daemon=True)

    def _wsgi(self, environ, start_response):
        with self._idle:
            self._busy += 1
        try:
            # The body is built inside the app's call (Flask returns a ready response), so the
            # request's database work is over when this returns.
            return self.app(environ, start_response)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float = 10) -> None:
        with self._idle:
            assert self._idle.wait_for(lambda: self._busy == 0, timeout), "the live server is still busy"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


# Package scope, not session: while Playwright's sync API is alive, the main thread has its asyncio
# loop marked as running (playwright/_impl/_greenlets.py), so asyncio.run() elsewhere in the run would
# fail. Both end with the last browser test.
@pytest.fixture(scope="package")
def live_server(app):
    """The live server of the session's app. Each test still starts from the freshly migrated database
    (the autouse reset in tests/conftest.py)."""
    werkzeug_log = logging.getLogger("werkzeug")
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)  # no line per request in the captured output
    server = LiveServer(app)
    server.thread.start()
    try:
        yield server
    finally:
        server.stop()
        werkzeug_log.setLevel(level)


@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian's chromium package; scripts/bootstrap --test installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_context(browser, live_server):
    """Open a browser context (its own cookies: one person) on the live server. All are closed after the
    test, and the server left idle, so no page of one test (the card page polls card.json) is still at
    work while the next test resets the database under it."""
    contexts = []

    def open_context(**options):
        context = browser.new_context(base_url=live_server.url, **{**PHONE, **options})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()
    live_server.wait_idle()


@pytest.fixture
def screenshot():
    """screenshot(page, name): save docs/screenshots/<name>.png when LOYALTY_SCREENSHOTS=1."""
    wanted = os.environ.get("LOYALTY_SCREENSHOTS") == "1"

    def take(page, name: str, *, full_page: bool = True) -> None:
        if not wanted:
            return
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        # Fonts and images in place before the picture.
        page.evaluate("document.fonts.ready.then(() => true)")
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page, animations="disabled",
                        caret="hide")

    return take


PASSWORD = "correct horse battery"


@pytest.fixture
def sign_up():
    """sign_up(page, name, email, phone=None) -> member number: join through /portal/signup as a person
    would (the form's fields by id, so in any language), landing on the card page."""

    def join(page, name: str, email: str, phone: str | None = None) -> str:
        page.goto("/portal/signup")
        page.fill("#name", name)
        page.fill("#email", email)
        if phone:
            page.fill("#phone", phone)
        page.fill("#password", PASSWORD)
        page.click("#signup-submit")
        page.wait_for_url("**/portal/card")
        return page.locator("#member-no").inner_text().strip()

    return join


def staff_sign_in(page, email: str, landing: str) -> None:
    """Sign a staff user in on /staff/login (password PASSWORD) and wait for `landing` (a path)."""
    page.goto(f"/staff/login?next={landing}")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#staff-login-submit")
    page.wait_for_url(f"**{landing}")


def assert_fits_the_screen(page) -> None:
    """Nothing on the page is wider than the phone: no sideways scrolling."""
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"{page.url} is {widths[0]}px wide on a {widths[1]}px screen"
