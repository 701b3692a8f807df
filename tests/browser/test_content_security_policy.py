"""The Content-Security-Policy (loyalty/web/security_headers.py) blocks nothing our own pages need: a
violation blocks a script or style silently, so every page with a script is opened in Chromium and
its console and `securitypolicyviolation` events must stay empty."""

from tests.browser.conftest import staff_sign_in

PAGES_OF = {"admin": ["/admin/", "/admin/staff", "/admin/keys", "/admin/program/"],
            "cashier": ["/staff/"], "marketer": ["/marketing/", "/marketing/offers/"]}


def _watch(page) -> list[str]:
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.add_init_script("document.addEventListener('securitypolicyviolation',"
                         " e => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))")
    return problems


def test_member_pages_break_no_policy(new_context, sign_up):
    page = new_context().new_page()
    problems = _watch(page)
    sign_up(page, "Wang Fang", "wang.fang@example.com")
    for path in ("/portal/card", "/portal/", "/portal/coupons", "/portal/profile", "/portal/history"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
    assert problems == []


def test_staff_pages_break_no_policy(app, factory, new_context):
    for role, paths in PAGES_OF.items():
        factory.staff(f"{role}@example.com", role)
        page = new_context().new_page()
        problems = _watch(page)
        staff_sign_in(page, f"{role}@example.com", paths[0])
        for path in paths:
            response = page.goto(path)
            assert response.status < 400, path
            page.wait_for_load_state("networkidle")
        assert problems == [], role
