"""Every sector, as a person walks it in headless Chromium: overview -> sector -> ward -> record -> back.

One live app (poller and web processes over a demo warehouse generated for "now") serves all five
walks. Each walk picks the 30-day window, opens the ward with the most records (by a click on the
map for citizen feedback, on the league table for the others), opens a record, climbs back to the
province with the breadcrumb and returns with the browser's back button. Screenshots of every step
go to ``tests/artifacts/sectors-<sector>-<step>.png``; the test prints where.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta

import pytest
from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import func, select

from config.datasets import load_datasets
from dashboards.sectors import SECTOR_PAGES, SectorPage
from data_sources.admin_units import crosswalk as unit_crosswalk
from data_sources.admin_units import current_units
from data_sources.clock import system_clock, to_local_naive
from data_sources.demo.generate import generate_warehouse
from data_sources.geo import prepare_ward_layer
from data_sources.sql import reflect_dataset
from data_sources.users import create_schema, create_user
from data_sources.warehouse import create_warehouse_engine
from tests.browser.conftest import ARTIFACTS, app_processes, save_screenshot
from tests.browser.test_demo_flow import click_when_ready as click
from tests.conftest import fast_datasets_file

pytestmark = pytest.mark.browser

PASSWORD = "browser walk password"
MAP_CLICK_SECTORS = ("feedback",)
"""Sectors whose walk opens the ward by clicking the map (the others use the league table)."""


@pytest.fixture(scope="module")
def live_app(tmp_path_factory):
    """Warehouse generated for "now", poller and web processes on a free port, for every walk."""
    folder = tmp_path_factory.mktemp("sector-walk")
    warehouse_url = f"sqlite:///{folder / 'warehouse.db'}"
    now = system_clock()
    generate_warehouse(warehouse_url, now=now, scale=0.05, start=(now - timedelta(days=35)).date())
    env = dict(
        os.environ,
        IOC_WAREHOUSE_URL=warehouse_url,
        IOC_APP_DB_URL=f"sqlite:///{folder / 'app.db'}",
        IOC_SNAPSHOT_URL=f"sqlite:///{folder / 'snapshots.db'}",
        IOC_SECRET_KEY=secrets.token_urlsafe(48),
        IOC_DATASETS_FILE=str(fast_datasets_file(folder, "10s")),
        IOC_REFRESH_SECONDS="2",
    )
    app_db = create_warehouse_engine(env["IOC_APP_DB_URL"])
    create_schema(app_db)
    create_user(app_db, "lanh_dao", PASSWORD, "leader", display_name="Lãnh đạo")
    try:
        with app_processes(env, folder / "logs", poller=True) as (url, _):
            yield {"url": url, "warehouse": warehouse_url, "now": now}
    finally:
        print(f"\nsector walk screenshots: {ARTIFACTS}/sectors-*.png")


def busiest_ward(live_app, page: SectorPage) -> tuple[str, str]:
    """(code, name) of the current ward with the most rows of the page's first records dataset in 30 days."""
    dataset = load_datasets().get(page.records[0])
    engine = create_warehouse_engine(live_app["warehouse"])
    table = reflect_dataset(engine, dataset).table
    since = to_local_naive(live_app["now"]) - timedelta(days=29)
    with engine.connect() as connection:
        rows = connection.execute(
            select(table.c[dataset.unit], func.count())
            .where(table.c[dataset.event_time] >= since)
            .group_by(table.c[dataset.unit])
        ).fetchall()
    engine.dispose()
    crosswalk = unit_crosswalk("46")
    totals: dict[str, int] = {}
    for unit, n in rows:
        if unit in crosswalk:
            totals[crosswalk[unit]] = totals.get(crosswalk[unit], 0) + n
    assert totals, f"the demo warehouse has no {dataset.id} rows in 30 days"
    code = max(totals, key=totals.get)
    units = current_units("46")
    return code, str(units.loc[units["code"] == code].iloc[0]["name"])


def click_league_row(driver, ward_name: str) -> bool:
    """Click the ward's name cell in the league table."""
    for cell in driver.find_elements(By.CSS_SELECTOR, "#league-table td[data-dash-column='ward_name']"):
        if cell.text == ward_name:
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", cell)
            cell.click()
            return True
    return False


def point_inside_drawn_ward(code: str) -> tuple[float, float]:
    """(lat, lon) of a point inside the ward as the map draws it (a registry centroid can fall in a
    neighbour's approximate polygon)."""
    from shapely.geometry import shape

    layer = prepare_ward_layer(current_units("46"), None)
    feature = next(f for f in layer.geojson["features"] if str(f.get("id") or f["properties"].get("code")) == code)
    point = shape(feature["geometry"]).representative_point()
    return point.y, point.x


def click_map_at(driver, lat: float, lon: float) -> bool:
    """Click the map canvas where (lat, lon) is drawn, as a person would (the map scrolled into view first)."""
    driver.execute_script(
        "const c = document.querySelector('#ward-map canvas.maplibregl-canvas');"
        "if (c) c.scrollIntoView({block: 'center'});"
    )
    point = driver.execute_script(
        """
        const gd = document.querySelector('#ward-map .js-plotly-plot');
        if (!gd || !gd._fullLayout || !gd._fullLayout.map || !gd._fullLayout.map._subplot) return null;
        const map = gd._fullLayout.map._subplot.map;
        const p = map.project([arguments[1], arguments[0]]);
        const canvas = map.getCanvas();
        return [p.x, p.y, canvas.clientWidth, canvas.clientHeight];
        """,
        lat,
        lon,
    )
    if not point:
        return False
    canvas = driver.find_element(By.CSS_SELECTOR, "#ward-map canvas.maplibregl-canvas")
    x, y, width, height = point
    ActionChains(driver).move_to_element_with_offset(canvas, int(x - width / 2), int(y - height / 2)).click().perform()
    return True


@pytest.mark.parametrize("page", SECTOR_PAGES, ids=lambda p: p.sector)
def test_walk_from_the_overview_to_a_record_and_back(chromium, live_app, page):
    driver = chromium
    base = live_app["url"]
    shot = f"sectors-{page.sector}"
    wait = WebDriverWait(
        driver, 30, ignored_exceptions=(StaleElementReferenceException, ElementClickInterceptedException)
    )
    driver.get(base + "/")
    wait.until(lambda d: d.find_elements(By.ID, "username"))
    driver.find_element(By.ID, "username").send_keys("lanh_dao")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()

    # overview: a tile per sector, each a link to its page
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".overview-row .kpi-tile")) == 5)
    save_screenshot(driver, f"{shot}-1-overview")
    click(wait, By.CSS_SELECTOR, f"a.kpi-link[href='{page.path}']")

    # the sector page: its tiles, series, map with its layers, league table, each panel aged
    wait.until(lambda d: d.current_url.startswith(base + page.path))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#kpi-row .kpi-tile")) == len(page.kpis))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#ward-map .maplibregl-canvas"))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#league-table td[data-dash-column='ward_name']")) > 1)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".panel-freshness.live")) == 5)
    click(wait, By.CSS_SELECTOR, "#window-select input[value='30d']")
    wait.until(lambda d: "window=30d" in d.current_url)
    save_screenshot(driver, f"{shot}-2-sector")

    # province -> ward: a click on the map or on the league table
    code, name = busiest_ward(live_app, page)
    if page.sector in MAP_CLICK_SECTORS:
        lat, lon = point_inside_drawn_ward(code)
        wait.until(lambda d: click_map_at(d, lat, lon) and f"ward={code}" in d.current_url)
    else:
        wait.until(lambda d: click_league_row(d, name))
    wait.until(lambda d: f"ward={code}" in d.current_url)
    wait.until(lambda d: name in d.find_element(By.ID, "breadcrumb").text)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#records-table tbody td[data-dash-column]")) > 1)
    export = driver.find_element(By.ID, "records-export").get_attribute("href")
    assert export.startswith(f"{base}/export{page.path}.csv?")
    save_screenshot(driver, f"{shot}-3-ward")

    # ward -> record: its detail, every configured column, the breadcrumb three steps deep
    click(wait, By.CSS_SELECTOR, "#records-table tbody td[data-dash-column]")
    wait.until(lambda d: "record=" in d.current_url)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#record-detail .detail-list dt"))
    record_url = driver.current_url
    crumbs = driver.find_element(By.ID, "breadcrumb").text
    assert name in crumbs and "Hồ sơ #" in crumbs
    save_screenshot(driver, f"{shot}-4-record")

    # breadcrumb back to the province
    click(wait, By.CSS_SELECTOR, "#breadcrumb button.crumb")
    wait.until(lambda d: "ward=" not in d.current_url and "record=" not in d.current_url)
    wait.until(lambda d: d.find_element(By.ID, "breadcrumb").text == "Toàn tỉnh/thành phố")
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#record-detail .detail-list"))
    save_screenshot(driver, f"{shot}-5-province")

    # the browser's back button brings the record back, as a shared link would
    driver.back()
    wait.until(lambda d: d.current_url == record_url)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#record-detail .detail-list dt"))
    wait.until(lambda d: name in d.find_element(By.ID, "breadcrumb").text)
    save_screenshot(driver, f"{shot}-6-back")
