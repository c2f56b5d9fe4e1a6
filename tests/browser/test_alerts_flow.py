"""An operator sets a per-station threshold in the UI (after a 7-day preview), the demo simulator's
scheduled smoke episode crosses it, the alert shows on the overview's banner, gets acknowledged with a
comment and resolves when the simulator's episode ends: real poller, simulator and web processes,
headless Chromium.

The smoke episode (PM2.5 230 µg/m³ at one station for the first half of every excursion period) is
used rather than the river rise because its threshold does not depend on the calendar: the demo's
rivers flood on the dates of its flood season, while its stations stay far below 200 µg/m³."""

from __future__ import annotations

import subprocess
import sys

import pytest
from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from config.settings import PROJECT_DIR
from data_sources.alerts.tables import alert_events
from data_sources.clock import system_clock
from data_sources.demo.generate import DEFAULT_SEED, build_world
from data_sources.demo.simulate import excursion_targets
from data_sources.users import create_user
from data_sources.warehouse import create_warehouse_engine
from layouts.i18n import t
from tests.browser.conftest import save_screenshot
from tests.browser.test_demo_flow import PASSWORD, click_when_ready, live_demo  # noqa: F401

pytestmark = pytest.mark.browser

RULE_NAME = "Khói bụi PM2.5 từng trạm quan trắc"
COMMENT = "Đã cử đoàn kiểm tra nguồn đốt quanh trạm"
EXCURSION_EVERY = 60
"""Seconds per simulator excursion period: one station reports smoke for the first half of each."""
PREVIEW_POINTS_JS = """
const graph = document.querySelector('#alert-rule-preview-graph .js-plotly-plot');
return graph && graph.data ? graph.data.map(trace => trace.x.length) : [];
"""


@pytest.fixture
def live(live_demo, tmp_path):  # noqa: F811 - the imported fixture, requested by name
    """The demo flow's live poller and web processes, the demo simulator stepping every second with an
    excursion every 60 s, and an operator account."""
    app_db = create_warehouse_engine(f"sqlite:///{tmp_path / 'app.db'}")
    create_user(app_db, "van_hanh", PASSWORD, "operator", display_name="Cán bộ vận hành")
    log = open(tmp_path / "simulator.log", "w")  # noqa: SIM115  (closed below)
    simulator = subprocess.Popen(
        [sys.executable, "-m", "data_sources.demo.simulate", "--url", live_demo["warehouse"], "--interval", "1"]
        + ["--scale", "0.02", "--excursion-every", str(EXCURSION_EVERY)],
        cwd=PROJECT_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield live_demo | {"app_db": app_db}
    finally:
        simulator.terminate()
        try:
            simulator.wait(timeout=10)
        except subprocess.TimeoutExpired:
            simulator.kill()
        log.close()
        app_db.dispose()


def smoky_station_name() -> str | None:
    """The station in a smoke episode right now (None in the quiet half of the period)."""
    world = build_world("46", DEFAULT_SEED)
    stations = world.air_stations
    station, _ = excursion_targets(
        system_clock(), EXCURSION_EVERY, stations["station_id"].tolist(), world.gauges["gauge_id"].tolist()
    )
    return None if station is None else str(stations.set_index("station_id").at[station, "name"])


def banner_items(driver) -> list:
    return [i for i in driver.find_elements(By.CSS_SELECTOR, "#alert-ticker .alert-item") if RULE_NAME in i.text]


def pick_option(driver, text: str) -> bool:
    """Click the open dropdown's option whose label contains ``text``."""
    for option in driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-options .dash-dropdown-option"):
        if text in option.text:
            option.click()
            return True
    return False


def choose(driver, wait, dropdown_id: str, text: str) -> None:
    click_when_ready(wait, By.ID, dropdown_id)
    wait.until(lambda d: pick_option(d, text))


def firing_item_of_the_smoky_station(driver):
    """The banner's firing alert of this rule for the station in a smoke episode, if shown."""
    station = smoky_station_name()
    for item in banner_items(driver):
        if station and station in item.text and "firing" in item.get_attribute("class"):
            return item
    return None


def acknowledge(driver, wait, long_wait) -> str:
    """Acknowledge the smoky station's alert from the banner; returns its alert id. An alert that resolves
    between the click and the submit (the episode ended) is skipped for the next episode."""
    for _attempt in range(3):
        item = long_wait.until(firing_item_of_the_smoky_station)
        alert_id = item.get_attribute("data-alert")
        assert "warning" in item.get_attribute("class"), "230 µg/m³: above the warning, below the critical level"
        assert "⚠ Cảnh báo" in item.text and "230" in item.text, "severity as icon and word, not colour alone"
        save_screenshot(driver, "alerts-03-banner-firing")
        click_when_ready(wait, By.CSS_SELECTOR, f"#alert-ticker .alert-item[data-alert='{alert_id}'] .ack-button")
        wait.until(lambda d: d.find_element(By.ID, "alert-ack-panel").is_displayed())
        driver.find_element(By.ID, "alert-ack-comment").send_keys(COMMENT)
        click_when_ready(wait, By.ID, "alert-ack-submit")

        def settled(d, alert_id=alert_id) -> str | None:
            acked = [i for i in banner_items(d) if i.get_attribute("data-alert") == alert_id]
            if acked and "acknowledged" in acked[0].get_attribute("class"):
                return "acknowledged"
            error = d.find_element(By.ID, "alert-ack-error").text
            return "gone" if error or not acked else None

        if wait.until(settled) == "acknowledged":
            return alert_id
        if driver.find_element(By.ID, "alert-ack-panel").is_displayed():
            click_when_ready(wait, By.ID, "alert-ack-cancel")
    raise AssertionError("three smoke episodes ended before their alert could be acknowledged")


def test_operator_sets_a_per_station_threshold_the_simulator_crosses_it_it_is_acknowledged_then_resolves(
    chromium, live
):
    driver = chromium
    ignored = (StaleElementReferenceException, ElementClickInterceptedException)
    wait = WebDriverWait(driver, 40, ignored_exceptions=ignored)
    long_wait = WebDriverWait(driver, 2 * EXCURSION_EVERY + 30, poll_frequency=0.5, ignored_exceptions=ignored)

    driver.get(live["url"] + "/login")
    driver.find_element(By.ID, "username").send_keys("van_hanh")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".overview-row .kpi-tile")) == 5)

    # the rules page, from the menu: PM2.5 of every air station
    click_when_ready(wait, By.CSS_SELECTOR, "a.nav-link[href='/alerts/rules']")
    wait.until(lambda d: d.find_elements(By.ID, "alert-rule-name"))
    driver.find_element(By.ID, "alert-rule-name").send_keys(RULE_NAME)
    choose(driver, wait, "alert-rule-dataset", "(env_air)")
    choose(driver, wait, "alert-rule-kpi", t("kpi.env_air.pm25_max", "vi"))
    scope = t("alerts.scope.each_entity", "vi")
    click_when_ready(wait, By.XPATH, f"//*[@id='alert-rule-scope']//label[contains(., '{scope}')]")

    # warning above critical on a "greater than" rule: the message appears next to the field, nothing is saved
    warning = driver.find_element(By.ID, "alert-rule-warning")
    warning.send_keys("450")
    driver.find_element(By.ID, "alert-rule-critical").send_keys("400")
    click_when_ready(wait, By.ID, "alert-rule-save")
    wait.until(lambda d: "phải nhỏ hơn ngưỡng nghiêm trọng" in d.find_element(By.CSS_SELECTOR, ".field-warning").text)
    save_screenshot(driver, "alerts-01-validation")
    warning.send_keys(Keys.CONTROL, "a")
    warning.send_keys(Keys.DELETE)  # clear() does not tell React (and so Dash) the value changed
    warning.send_keys("200")

    # the preview replays every station hour by hour over the last 7 days before saving
    click_when_ready(wait, By.ID, "alert-rule-preview")
    wait.until(lambda d: d.find_element(By.ID, "alert-rule-preview-result").text.strip())
    points = wait.until(lambda d: d.execute_script(PREVIEW_POINTS_JS) or None)
    assert points and set(points) == {7 * 24}, points
    note = t("alerts.preview.note.entity_48h", "vi")
    assert note not in driver.find_element(By.ID, "alert-rule-preview-result").text
    save_screenshot(driver, "alerts-02-preview")
    click_when_ready(wait, By.ID, "alert-rule-save")
    wait.until(lambda d: "Đã lưu quy tắc" in d.find_element(By.ID, "alert-rule-message").text)
    wait.until(lambda d: RULE_NAME in d.find_element(By.ID, "alert-rules-list").text)

    # the simulator's smoke episode: the station's alert appears in the banner on the overview, acknowledged there
    click_when_ready(wait, By.CSS_SELECTOR, "a.nav-link[href='/']")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".overview-row .kpi-tile")) == 5)
    alert_id = acknowledge(driver, wait, long_wait)
    acked = next(i for i in banner_items(driver) if i.get_attribute("data-alert") == alert_id)
    assert "van_hanh" in acked.text
    save_screenshot(driver, "alerts-04-acknowledged")

    # the episode ends (the simulator restores the readings): the alert resolves and leaves the banner
    long_wait.until(lambda d: all(i.get_attribute("data-alert") != alert_id for i in banner_items(d)))
    save_screenshot(driver, "alerts-05-resolved")
    with live["app_db"].connect() as connection:
        events = connection.execute(
            select(alert_events.c.kind, alert_events.c.actor, alert_events.c.comment, alert_events.c.severity)
            .where(alert_events.c.alert_id == alert_id)
            .order_by(alert_events.c.id)
        ).fetchall()
    assert [e.kind for e in events] == ["fired", "acknowledged", "resolved"]
    assert (events[1].actor, events[1].comment) == ("van_hanh", COMMENT) and events[0].severity == "warning"

    # the history page tells the same story
    click_when_ready(wait, By.CSS_SELECTOR, "a.nav-link[href='/alerts']")
    wait.until(lambda d: "Đã hết cảnh báo" in d.find_element(By.ID, "alert-history-table").text)
    assert COMMENT in driver.find_element(By.ID, "alert-history-table").text
    save_screenshot(driver, "alerts-06-history")
