"""The product as a person uses it: real web and poller processes, driven in headless Chromium."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta

import pytest
from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import func, select

from dashboards.sectors import sector_page_for
from data_sources.clock import system_clock
from data_sources.demo.generate import generate_warehouse
from data_sources.demo.schema import OPEN_FEEDBACK_STATUSES, feedback_reports
from data_sources.users import create_schema, create_user
from data_sources.warehouse import create_warehouse_engine
from layouts.i18n import format_number
from tests.browser.conftest import app_processes, save_screenshot
from tests.conftest import fast_datasets_file

pytestmark = pytest.mark.browser

POLL_SECONDS = 2
PASSWORD = "browser test password"


@pytest.fixture
def live_demo(tmp_path):
    """Warehouse generated for "now", poller and web processes on a free port; stopped afterwards."""
    warehouse_url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    now = system_clock()
    generate_warehouse(warehouse_url, now=now, scale=0.02, start=(now - timedelta(days=35)).date())
    env = dict(
        os.environ,
        IOC_WAREHOUSE_URL=warehouse_url,
        IOC_APP_DB_URL=f"sqlite:///{tmp_path / 'app.db'}",
        IOC_SNAPSHOT_URL=f"sqlite:///{tmp_path / 'snapshots.db'}",
        IOC_SECRET_KEY=secrets.token_urlsafe(48),
        IOC_DATASETS_FILE=str(fast_datasets_file(tmp_path, f"{POLL_SECONDS}s")),
        IOC_REFRESH_SECONDS="1",
    )
    app_db = create_warehouse_engine(env["IOC_APP_DB_URL"])
    create_schema(app_db)
    create_user(app_db, "lanh_dao", PASSWORD, "leader", display_name="Lãnh đạo")
    with app_processes(env, tmp_path / "logs", poller=True) as (url, processes):
        yield {"url": url, "processes": processes, "warehouse": warehouse_url}


def sql_open_reports(warehouse_url: str) -> int:
    engine = create_warehouse_engine(warehouse_url)
    with engine.connect() as connection:
        count = connection.execute(
            select(func.count()).where(feedback_reports.c.status.in_(OPEN_FEEDBACK_STATUSES))
        ).scalar()
    engine.dispose()
    return count


def tile_value(driver, label: str) -> str | None:
    """Value text of the overview tile whose label is ``label``."""
    for tile in driver.find_elements(By.CSS_SELECTOR, ".kpi-tile"):
        if tile.find_element(By.CSS_SELECTOR, ".kpi-label").text == label:
            return tile.find_element(By.CSS_SELECTOR, ".kpi-value").text
    return None


def click_when_ready(wait: WebDriverWait, by: str, selector: str) -> None:
    """Find and click in one step, retried while a refresh re-renders the element."""

    def attempt(driver) -> bool:
        driver.find_element(by, selector).click()
        return True

    wait.until(attempt)


def pick_option(driver, text: str) -> bool:
    """Click the open dropdown's option labelled ``text``."""
    for option in driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-options .dash-dropdown-option"):
        if option.text == text:
            option.click()
            return True
    return False


def test_leader_logs_in_drills_into_a_ward_sees_stale_when_the_poller_stops_and_401_leads_to_login(chromium, live_demo):
    driver = chromium
    base = live_demo["url"]
    wait = WebDriverWait(
        driver, 30, ignored_exceptions=(StaleElementReferenceException, ElementClickInterceptedException)
    )

    driver.get(base + "/")
    wait.until(EC.presence_of_element_located((By.ID, "username")))
    save_screenshot(driver, "01-login")
    driver.find_element(By.ID, "username").send_keys("lanh_dao")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()

    # overview: one tile per sector, the feedback tile showing the warehouse's open reports
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".overview-row .kpi-tile")) == 5)
    expected = format_number(sql_open_reports(live_demo["warehouse"]), "vi")
    # the simulator is not running here, so the figure is stable and must equal SQL
    wait.until(lambda d: tile_value(d, "Phản ánh hiện trường") == expected)
    wait.until(lambda d: "live" in d.find_element(By.ID, "freshness-badge").get_attribute("class"))
    save_screenshot(driver, "02-overview")

    # sector page: tiles, series and the ward map
    click_when_ready(wait, By.CSS_SELECTOR, "a.kpi-link[href='/feedback']")
    tiles = len(sector_page_for("/feedback").kpis)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#kpi-row .kpi-tile")) == tiles)
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#ward-map .js-plotly-plot")))
    save_screenshot(driver, "03-feedback")

    # drill down: pick a ward, its records appear, the URL keeps the view
    click_when_ready(wait, By.ID, "ward-select")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".dash-dropdown-options")))
    wait.until(lambda d: pick_option(d, "Phường Phú Xuân"))
    wait.until(lambda d: "ward=19753" in d.current_url)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#records-table tbody tr")) > 1)
    wait.until(lambda d: "Phú Xuân" in d.find_element(By.ID, "breadcrumb").text)
    save_screenshot(driver, "04-ward-records")

    # the poller stops: within two poll intervals (the wait's bound) the badge, aged in the browser, says stale
    live_demo["processes"]["poller"].terminate()
    live_demo["processes"]["poller"].wait(timeout=10)
    WebDriverWait(driver, 2 * POLL_SECONDS + 2, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: "stale" in d.find_element(By.ID, "freshness-badge").get_attribute("class")
    )
    save_screenshot(driver, "05-stale")

    # the session goes away (expiry, logout elsewhere): the next tick gets 401 and lands on login
    driver.delete_all_cookies()
    wait.until(lambda d: "/login?next=" in d.current_url)
    assert driver.find_element(By.ID, "username").is_displayed()
