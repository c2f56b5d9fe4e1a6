"""An operator sets a threshold in the UI, the data crosses it, the alert shows on the overview's banner,
gets acknowledged with a comment and resolves when the data goes back: real poller and web processes,
headless Chromium."""

from __future__ import annotations

import numpy as np
import pytest
from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import func, select, update

from data_sources.alerts.tables import alert_events
from data_sources.clock import system_clock
from data_sources.demo import schema
from data_sources.demo.generate import (
    DEFAULT_SEED,
    build_world,
    feedback_reports,
    stream,
    to_seconds,
    write_rows,
)
from data_sources.demo.schema import OPEN_FEEDBACK_STATUSES
from data_sources.users import create_user
from data_sources.warehouse import create_warehouse_engine
from tests.browser.conftest import save_screenshot
from tests.browser.test_demo_flow import PASSWORD, click_when_ready, live_demo, pick_option  # noqa: F401

pytestmark = pytest.mark.browser

RULE_NAME = "Phản ánh tồn đọng toàn thành phố"
COMMENT = "Đã chuyển các phường xử lý trong ngày"
NEW_REPORTS = 3


@pytest.fixture
def live(live_demo, tmp_path):  # noqa: F811 - the imported fixture, requested by name
    """The demo flow's live poller and web processes, plus an operator account in their app database."""
    app_db = create_warehouse_engine(f"sqlite:///{tmp_path / 'app.db'}")
    create_user(app_db, "van_hanh", PASSWORD, "operator", display_name="Cán bộ vận hành")
    yield live_demo | {"app_db": app_db}
    app_db.dispose()


def open_reports(warehouse_url: str) -> int:
    engine = create_warehouse_engine(warehouse_url)
    with engine.connect() as connection:
        count = connection.execute(
            select(func.count()).where(schema.feedback_reports.c.status.in_(OPEN_FEEDBACK_STATUSES))
        ).scalar()
    engine.dispose()
    return count


def add_open_reports(warehouse_url: str, count: int) -> list[int]:
    """New citizen reports, written the way the simulator writes them (updated_at = now)."""
    engine = create_warehouse_engine(warehouse_url)
    now_s = to_seconds(system_clock())
    world = build_world("46", DEFAULT_SEED)
    columns = feedback_reports(world, np.full(count, now_s), stream(DEFAULT_SEED, "alerts-browser"), now_s, now_s)
    table = schema.feedback_reports
    with engine.begin() as connection:
        before = connection.execute(select(func.max(table.c.id))).scalar() or 0
        write_rows(connection, table, columns)
        ids = connection.execute(select(table.c.id).where(table.c.id > before)).scalars().all()
    engine.dispose()
    return ids


def resolve_reports(warehouse_url: str, ids: list[int]) -> None:
    """The wards close the reports: status resolved, updated_at = now (as the simulator advances them)."""
    engine = create_warehouse_engine(warehouse_url)
    stamp = system_clock().replace(tzinfo=None, microsecond=0)
    table = schema.feedback_reports
    with engine.begin() as connection:
        connection.execute(
            update(table).where(table.c.id.in_(ids)).values(status="resolved", resolved_at=stamp, updated_at=stamp)
        )
    engine.dispose()


def banner_items(driver) -> list:
    return [i for i in driver.find_elements(By.CSS_SELECTOR, "#alert-ticker .alert-item") if RULE_NAME in i.text]


def choose(driver, wait, dropdown_id: str, text: str) -> None:
    click_when_ready(wait, By.ID, dropdown_id)
    wait.until(lambda d: pick_option(d, text))


def test_operator_creates_a_rule_data_crosses_it_alert_is_acknowledged_then_resolves(chromium, live):
    driver = chromium
    wait = WebDriverWait(
        driver, 40, ignored_exceptions=(StaleElementReferenceException, ElementClickInterceptedException)
    )
    baseline = open_reports(live["warehouse"])

    driver.get(live["url"] + "/login")
    driver.find_element(By.ID, "username").send_keys("van_hanh")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".overview-row .kpi-tile")) == 5)

    # the rules page, from the menu
    click_when_ready(wait, By.CSS_SELECTOR, "a.nav-link[href='/alerts/rules']")
    wait.until(lambda d: d.find_elements(By.ID, "alert-rule-name"))
    driver.find_element(By.ID, "alert-rule-name").send_keys(RULE_NAME)
    choose(driver, wait, "alert-rule-dataset", "Phản ánh hiện trường · Phản ánh đang xử lý (feedback)")
    choose(driver, wait, "alert-rule-kpi", "Phản ánh đang xử lý")
    warning = driver.find_element(By.ID, "alert-rule-warning")
    warning.send_keys(str(baseline + 1))

    # a wrong critical threshold first: the message appears next to the field, nothing is saved
    driver.find_element(By.ID, "alert-rule-critical").send_keys(str(baseline))
    click_when_ready(wait, By.ID, "alert-rule-save")
    wait.until(lambda d: "phải nhỏ hơn ngưỡng nghiêm trọng" in d.find_element(By.CSS_SELECTOR, ".field-warning").text)
    save_screenshot(driver, "alerts-01-validation")
    critical = driver.find_element(By.ID, "alert-rule-critical")
    critical.send_keys(Keys.CONTROL, "a")
    critical.send_keys(Keys.DELETE)  # clear() does not tell React (and so Dash) the value changed
    click_when_ready(wait, By.ID, "alert-rule-preview")
    wait.until(lambda d: d.find_element(By.ID, "alert-rule-preview-result").text.strip())
    click_when_ready(wait, By.ID, "alert-rule-save")
    wait.until(lambda d: "Đã lưu quy tắc" in d.find_element(By.ID, "alert-rule-message").text)
    wait.until(lambda d: RULE_NAME in d.find_element(By.ID, "alert-rules-list").text)
    save_screenshot(driver, "alerts-02-rule-saved")

    # the data crosses the threshold: the alert appears in the banner on the overview
    ids = add_open_reports(live["warehouse"], NEW_REPORTS)
    click_when_ready(wait, By.CSS_SELECTOR, "a.nav-link[href='/']")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".overview-row .kpi-tile")) == 5)
    wait.until(lambda d: banner_items(d))
    item = banner_items(driver)[0]
    assert "warning" in item.get_attribute("class") and "firing" in item.get_attribute("class")
    assert "⚠ Cảnh báo" in item.text, "severity as icon and word, not colour alone"
    assert str(baseline + NEW_REPORTS) in item.text
    save_screenshot(driver, "alerts-03-banner-firing")

    # acknowledged with a comment, from the banner
    click_when_ready(wait, By.CSS_SELECTOR, "#alert-ticker .alert-item .ack-button")
    wait.until(lambda d: d.find_element(By.ID, "alert-ack-panel").is_displayed())
    driver.find_element(By.ID, "alert-ack-comment").send_keys(COMMENT)
    click_when_ready(wait, By.ID, "alert-ack-submit")
    wait.until(lambda d: banner_items(d) and "acknowledged" in banner_items(d)[0].get_attribute("class"))
    assert "van_hanh" in banner_items(driver)[0].text
    save_screenshot(driver, "alerts-04-acknowledged")

    # the data goes back: the alert resolves and leaves the banner
    resolve_reports(live["warehouse"], ids)
    wait.until(lambda d: not banner_items(d))
    save_screenshot(driver, "alerts-05-resolved")

    with live["app_db"].connect() as connection:
        events = connection.execute(
            select(alert_events.c.kind, alert_events.c.actor, alert_events.c.comment)
            .where(alert_events.c.rule_name == RULE_NAME)
            .order_by(alert_events.c.id)
        ).fetchall()
    assert [e.kind for e in events] == ["fired", "acknowledged", "resolved"]
    assert (events[1].actor, events[1].comment) == ("van_hanh", COMMENT)

    # the history page tells the same story
    click_when_ready(wait, By.CSS_SELECTOR, "a.nav-link[href='/alerts']")
    wait.until(lambda d: "Đã hết cảnh báo" in d.find_element(By.ID, "alert-history-table").text)
    assert COMMENT in driver.find_element(By.ID, "alert-history-table").text
    save_screenshot(driver, "alerts-06-history")
