"""Access control as a person meets it, in headless Chromium against a real web process.

The web process runs as deployed behind one reverse proxy (``IOC_TRUSTED_PROXY_COUNT=1``), and the
browser sets the proxy's X-Forwarded-For header through the DevTools protocol: that is how two
browsers at two addresses are told apart here, since every local connection comes from 127.0.0.1.
"""

from __future__ import annotations

import os
import secrets

import pytest
from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from data_sources.users import create_schema, create_user
from data_sources.warehouse import create_warehouse_engine
from tests.browser.conftest import app_processes, save_screenshot
from tests.browser.test_demo_flow import click_when_ready, pick_option

pytestmark = pytest.mark.browser

ADMIN_PASSWORD = "admin browser password"
DUTY_PASSWORD = "duty operator password"
NEW_PASSWORD = "new head password 2026"
ATTACKER = "203.0.113.9"
DUTY_DESK = "10.46.1.20"


@pytest.fixture(scope="module")
def live_web(tmp_path_factory):
    """One web process over an empty warehouse (no poller: these pages need no figures), behind a 'proxy'."""
    folder = tmp_path_factory.mktemp("security_flow")
    env = dict(
        os.environ,
        IOC_WAREHOUSE_URL=f"sqlite:///{folder / 'warehouse.db'}",
        IOC_APP_DB_URL=f"sqlite:///{folder / 'app.db'}",
        IOC_SNAPSHOT_URL=f"sqlite:///{folder / 'snapshots.db'}",
        IOC_SECRET_KEY=secrets.token_urlsafe(48),
        IOC_POPULATION_TABLE="",
        IOC_LOGIN_MAX_FAILURES="3",
        IOC_TRUSTED_PROXY_COUNT="1",
    )
    app_db = create_warehouse_engine(env["IOC_APP_DB_URL"])
    create_schema(app_db)
    create_user(app_db, "quan_tri", ADMIN_PASSWORD, "admin", display_name="Quản trị")
    create_user(app_db, "truc_ban", DUTY_PASSWORD, "operator", display_name="Trực ban")
    app_db.dispose()
    with app_processes(env, folder, poller=False) as (url, _):
        yield url


def waiter(driver, seconds: float = 30) -> WebDriverWait:
    return WebDriverWait(
        driver, seconds, ignored_exceptions=(StaleElementReferenceException, ElementClickInterceptedException)
    )


def from_address(driver, address: str) -> None:
    """Every request of this browser now carries the proxy header naming ``address``."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"X-Forwarded-For": address}})


def submit_login(driver, base: str, username: str, password: str) -> None:
    driver.get(base + "/login")
    waiter(driver).until(EC.presence_of_element_located((By.ID, "username")))
    driver.find_element(By.ID, "username").clear()
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()


def nav_labels(driver) -> list[str]:
    return [link.text for link in driver.find_elements(By.CSS_SELECTOR, "#nav a")]


def sign_in(driver, base: str, username: str, password: str) -> None:
    submit_login(driver, base, username, password)
    waiter(driver).until(lambda d: nav_labels(d))


def sign_out(driver) -> None:
    click_when_ready(waiter(driver), By.ID, "logout-button")
    waiter(driver).until(lambda d: d.current_url.endswith("/login"))


def test_without_a_session_every_page_leads_to_the_login_form(chromium, live_web):
    from dashboards import all_pages  # noqa: F401  (fills the page registry)
    from dashboards.routes import registered_pages
    from dashboards.sectors import SECTOR_PAGES

    paths = ["/", *(p.path for p in SECTOR_PAGES), *(p.path for p in registered_pages()), "/no-such-page"]
    assert "/admin/users" in paths and "/admin/audit" in paths
    for path in paths:
        chromium.get(live_web + path)
        waiter(chromium).until(EC.presence_of_element_located((By.ID, "username")))
        assert "/login?next=" + path in chromium.current_url, path
    save_screenshot(chromium, "security-01-login-required")


def test_admin_creates_a_user_who_signs_in_and_a_guesser_elsewhere_does_not_lock_out_the_duty_operator(
    chromium, live_web
):
    driver, base = chromium, live_web
    wait = waiter(driver)

    # the admin creates a department head on the admin page
    from_address(driver, DUTY_DESK)
    sign_in(driver, base, "quan_tri", ADMIN_PASSWORD)
    assert "Quản lý tài khoản" in nav_labels(driver) and "Nhật ký hệ thống" in nav_labels(driver)
    click_when_ready(wait, By.LINK_TEXT, "Quản lý tài khoản")
    wait.until(lambda d: "truc_ban" in d.find_element(By.ID, "admin-users-table").text)
    driver.find_element(By.ID, "admin-create-username").send_keys("tp_phan_anh")
    driver.find_element(By.ID, "admin-create-name").send_keys("Trưởng phòng Phản ánh")
    click_when_ready(wait, By.ID, "admin-create-role")
    wait.until(lambda d: pick_option(d, "Trưởng phòng"))
    click_when_ready(wait, By.XPATH, "//div[@id='admin-create-sectors']//label[contains(., 'Phản ánh hiện trường')]")
    driver.find_element(By.ID, "admin-create-password").send_keys("short")
    click_when_ready(wait, By.ID, "admin-create-submit")
    wait.until(lambda d: "ít nhất 10 ký tự" in d.find_element(By.ID, "admin-create-message").text)
    driver.find_element(By.ID, "admin-create-password").send_keys(NEW_PASSWORD)
    click_when_ready(wait, By.ID, "admin-create-submit")
    wait.until(lambda d: d.find_element(By.ID, "admin-create-message").text == "Đã tạo tài khoản tp_phan_anh")
    wait.until(lambda d: "tp_phan_anh" in d.find_element(By.ID, "admin-users-table").text)
    save_screenshot(driver, "security-02-admin-created-user")
    sign_out(driver)

    # the new head signs in and sees only their sector, no admin page
    sign_in(driver, base, "tp_phan_anh", NEW_PASSWORD)
    head_nav = nav_labels(driver)
    assert head_nav[:2] == ["Tổng quan", "Phản ánh hiện trường"]
    assert not {"Giao thông", "Y tế", "Môi trường", "Dịch vụ công", "Quản lý tài khoản", "Nhật ký hệ thống"} & set(
        head_nav
    )
    driver.get(base + "/admin/users")
    wait.until(lambda d: "Bạn không có quyền xem nội dung này." in d.find_element(By.ID, "request-refused").text)
    assert not driver.find_elements(By.ID, "admin-users-table"), "the admin page is refused on the server"
    save_screenshot(driver, "security-03-forbidden")
    click_when_ready(wait, By.LINK_TEXT, "Về trang tổng quan")
    wait.until(lambda d: nav_labels(d) == head_nav)
    assert not driver.find_elements(By.ID, "request-refused"), "the banner goes once a page routes"
    sign_out(driver)

    # someone elsewhere guesses the duty operator's password: that address is blocked...
    from_address(driver, ATTACKER)
    for attempt in range(3):
        submit_login(driver, base, "truc_ban", f"guess number {attempt}")
        wait.until(EC.presence_of_element_located((By.ID, "login-message")))
    assert "quá nhiều lần" in driver.find_element(By.ID, "login-message").text
    submit_login(driver, base, "truc_ban", DUTY_PASSWORD)
    wait.until(EC.presence_of_element_located((By.ID, "login-message")))
    assert "quá nhiều lần" in driver.find_element(By.ID, "login-message").text, "blocked even with the password"
    save_screenshot(driver, "security-04-throttled")

    # ...while the duty operator at their own desk signs in as usual
    from_address(driver, DUTY_DESK)
    sign_in(driver, base, "truc_ban", DUTY_PASSWORD)
    assert "Tổng quan" in nav_labels(driver)
    sign_out(driver)

    # the admin sees the blocked address and lifts the block
    sign_in(driver, base, "quan_tri", ADMIN_PASSWORD)
    driver.get(base + "/admin/users")
    wait.until(lambda d: ATTACKER in d.find_element(By.ID, "admin-blocks").text)
    click_when_ready(wait, By.ID, "admin-edit-user")
    wait.until(lambda d: pick_option(d, "truc_ban — Trực ban"))
    click_when_ready(wait, By.ID, "admin-edit-unlock")
    wait.until(lambda d: "Đã gỡ chặn đăng nhập của truc_ban" in d.find_element(By.ID, "admin-edit-message").text)
    wait.until(lambda d: ATTACKER not in d.find_element(By.ID, "admin-blocks").text)
    save_screenshot(driver, "security-05-unlocked")

    # the audit log shows who did what from where
    driver.get(base + "/admin/audit")
    wait.until(lambda d: "Đăng nhập sai" in d.find_element(By.ID, "audit-table").text)
    table = driver.find_element(By.ID, "audit-table").text
    assert "Gỡ chặn đăng nhập" in table and "Tạo tài khoản" in table and ATTACKER in table
    save_screenshot(driver, "security-06-audit-log")
    sign_out(driver)
    from_address(driver, ATTACKER)
    sign_in(driver, base, "truc_ban", DUTY_PASSWORD)
