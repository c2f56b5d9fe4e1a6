"""Every page the admin can open, rendered in headless Chromium in the pseudo-language, Vietnamese and English.

* Pseudo-language ``xx`` (enabled only by the test-only ``IOC_PSEUDO_LANGUAGE`` setting): every catalogue
  string is wrapped in ⟦…⟧, so any visible text with letters outside the markers did not go through the
  catalogue. The only exceptions are data values, listed in ``is_data_value``: numbers and dates, ward
  and unit names and codes from the registry, the signed-in person's name, values in table cells, unit
  symbols of KPIs, and Plotly's axis ticks (dates and numbers formatted by the locale).
* ``vi`` and ``en``: no catalogue key shows through, Plotly's date ticks use the page's language, the
  approximate-boundary label is on the map.
* The language a user picks is stored on the account and survives logout and login.

Pages come from the navigation menu as rendered, so pages other features add are covered too.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import date

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from data_sources.admin_units import current_units, legacy_units
from data_sources.clock import system_clock
from data_sources.demo.generate import generate_warehouse
from data_sources.scheduler import Poller
from data_sources.snapshots import SQLiteSnapshotStore
from data_sources.users import create_schema, create_user, get_user_by_name
from data_sources.warehouse import create_warehouse_engine
from layouts.i18n import PSEUDO_CLOSE, PSEUDO_OPEN, catalogue, raw_catalogue, t
from tests.browser.conftest import app_processes, save_screenshot

pytestmark = pytest.mark.browser

PASSWORD = "language test password"
ADMIN = "quan_tri_ngon_ngu"
PROVINCE = "46"
KPI_UNIT_SYMBOLS = {"%", "µg/m³", "m", "mm", "/5", "km/h"}
"""Unit symbols configured on KPIs (datasets.toml): the same in every language."""
ENGLISH_MONTHS = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b")

PLOTLY_SEPARATORS = {"vi": ",.", "en": ".,"}
"""Decimal and thousands separators Plotly derives from the locale (vi 1.234,5; en 1,234.5)."""
PLOT_LOCALES_JS = """
return Array.from(document.querySelectorAll('.js-plotly-plot'))
  .map(gd => [gd._context.locale, gd._fullLayout.separators]);
"""

VISIBLE_TEXT_JS = """
const out = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const dataSelector = arguments[0];
while (walker.nextNode()) {
  const node = walker.currentNode;
  const text = node.textContent.trim();
  const element = node.parentElement;
  if (!text || !element || element.closest('script,style,noscript,title')) continue;
  const style = window.getComputedStyle(element);
  if (style.visibility === 'hidden' || style.display === 'none' || parseFloat(style.opacity) === 0) continue;
  const rects = element.getClientRects();
  if (!rects.length) continue;
  let hidden = false;
  for (let up = element; up; up = up.parentElement) {
    const s = window.getComputedStyle(up);
    if (s.display === 'none' || s.visibility === 'hidden') { hidden = true; break; }
  }
  if (hidden) continue;
  const data = element.closest(dataSelector);
  out.push({text: text, data: data ? (data.id || data.className.baseVal || data.className || data.tagName) : '',
            where: (element.id ? '#' + element.id : element.tagName.toLowerCase()) +
                   (element.className && element.className.baseVal === undefined ? '.' + element.className : '')});
}
return out;
"""
DATA_SELECTOR = (
    "#user-name, td.dash-cell, .dash-spreadsheet td, .kpi-unit, .data-value, "
    "svg .xtick, svg .ytick, svg .cbaxis, svg .colorbar, .dash-dropdown-value-item"
)
"""Where data values live: cells of tables, the signed-in name, KPI unit symbols, Plotly ticks.
(Dropdown labels are checked like any other text: their options come from the catalogue.)"""


def strip_markers(text: str) -> str:
    """The text with every ⟦…⟧ span (nested ones included) removed."""
    depth, kept = 0, []
    for char in text:
        if char == PSEUDO_OPEN:
            depth += 1
        elif char == PSEUDO_CLOSE:
            depth = max(0, depth - 1)
        elif depth == 0:
            kept.append(char)
    return "".join(kept)


def data_names() -> set[str]:
    """Unit names and codes from the registry and the crosswalk (data values, never translated)."""
    units = current_units(PROVINCE)
    legacy = legacy_units(PROVINCE)
    names = set(units["name"]) | set(units["name_en"]) | set(units["code"])
    names |= set(legacy["old_name"]) | set(legacy["old_district"]) | set(legacy["old_code"])
    return names


def is_data_value(item: dict, names: set[str]) -> bool:
    """True for text the catalogue cannot and should not hold (see the module docstring)."""
    rest = strip_markers(item["text"]).strip()
    if not re.search(r"[^\W\d_]", rest):  # no letters left: numbers, dates, punctuation, icons
        return True
    if item["data"]:
        return item["data"] != "kpi-unit" or rest in KPI_UNIT_SYMBOLS
    return rest in names


def login(driver, base: str, username: str) -> None:
    driver.get(base + "/login")
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "username"))
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#nav a"))


def nav_links(driver) -> list[str]:
    """Hrefs of the navigation menu as rendered for the signed-in account."""
    wait = WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,))
    return wait.until(lambda d: [a.get_attribute("href") for a in d.find_elements(By.CSS_SELECTOR, "#nav a")] or False)


def settled_texts(driver) -> list[dict]:
    """Visible text nodes once the page stopped changing (two equal reads, nothing loading)."""
    previous: list | None = None

    def stable(d) -> list | bool:
        nonlocal previous
        if d.find_elements(By.CSS_SELECTOR, "[data-dash-is-loading='true']"):
            previous = None
            return False
        if not d.find_elements(By.CSS_SELECTOR, "#page-content > *"):
            return False
        current = d.execute_script(VISIBLE_TEXT_JS, DATA_SELECTOR)
        done = current == previous
        previous = current
        return current if done else False

    return WebDriverWait(driver, 40, poll_frequency=0.75).until(stable)


def open_page(driver, url: str) -> list[dict]:
    driver.get(url)
    return settled_texts(driver)


@pytest.fixture(scope="module")
def language_app(tmp_path_factory):
    """Warehouse since June 2025 (pre-merger months included), polled once; the web process alone with
    the pseudo-language enabled; an admin account."""
    folder = tmp_path_factory.mktemp("languages")
    warehouse_url = f"sqlite:///{folder / 'warehouse.db'}"
    now = system_clock()
    generate_warehouse(warehouse_url, now=now, scale=0.02, start=date(2025, 6, 1))
    env = dict(
        os.environ,
        IOC_WAREHOUSE_URL=warehouse_url,
        IOC_APP_DB_URL=f"sqlite:///{folder / 'app.db'}",
        IOC_SNAPSHOT_URL=f"sqlite:///{folder / 'snapshots.db'}",
        IOC_SECRET_KEY=secrets.token_urlsafe(48),
        IOC_BOUNDARIES_CACHE_DIR=str(folder / "cache"),
        IOC_PSEUDO_LANGUAGE="true",
        IOC_REFRESH_SECONDS="30",
    )
    from config.datasets import load_datasets

    store = SQLiteSnapshotStore(folder / "snapshots.db")
    Poller(load_datasets(), create_warehouse_engine(warehouse_url), store, system_clock).poll_all()
    app_db = create_warehouse_engine(env["IOC_APP_DB_URL"])
    create_schema(app_db)
    create_user(app_db, ADMIN, PASSWORD, "admin", display_name="Quản trị Ngôn Ngữ")
    with app_processes(env, folder, poller=False) as (url, _):
        yield {"url": url, "app_db": app_db}


def test_every_page_in_the_pseudo_language_shows_only_catalogue_text(chromium, language_app):
    driver, base = chromium, language_app["url"]
    login(driver, base, ADMIN)
    driver.get(base + "/lang/xx")
    pages = nav_links(driver)
    assert len(pages) >= 3, pages
    assert any(href.endswith("/pre-merger") for href in pages)
    names = data_names()
    untranslated = []
    for href in pages:
        texts = open_page(driver, href)
        assert any(PSEUDO_OPEN in item["text"] for item in texts), f"{href} is not in the pseudo-language"
        save_screenshot(driver, f"lang-xx-{href.rsplit('/', 1)[-1] or 'overview'}")
        untranslated += [(href, item["where"], item["text"]) for item in texts if not is_data_value(item, names)]
    assert not untranslated, "text outside the catalogue:\n" + "\n".join(map(str, untranslated))


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_every_page_in_each_language_shows_no_catalogue_key(chromium, language_app, lang):
    driver, base = chromium, language_app["url"]
    login(driver, base, ADMIN)
    driver.get(base + f"/lang/{lang}")
    keys = set(raw_catalogue("vi"))
    namespaces = sorted({key.split(".", 1)[0] for key in keys})
    key_like = re.compile(r"\b(?:" + "|".join(namespaces) + r")\.[a-z0-9_]+(?:\.[a-z0-9_]+)*\b")
    strings = catalogue(lang)
    problems, plotted = [], 0
    for href in nav_links(driver):
        texts = open_page(driver, href)
        save_screenshot(driver, f"lang-{lang}-{href.rsplit('/', 1)[-1] or 'overview'}")
        for item in texts:
            text = item["text"]
            if PSEUDO_OPEN in text or key_like.search(text) or text in keys:
                problems.append((href, item["where"], text))
        nav = [item["text"] for item in texts if item["where"].startswith("a.nav-link")]
        assert strings["nav.overview"] in nav, (href, nav)
        ticks = [item["text"] for item in texts if "tick" in str(item["data"])]
        if lang == "vi":
            assert not [tick for tick in ticks if ENGLISH_MONTHS.search(tick)], (href, ticks)
        # every Plotly graph runs in the page's locale: registered (vi) and chosen in the graph config
        plots = driver.execute_script(PLOT_LOCALES_JS)
        assert all(plot == [lang, PLOTLY_SEPARATORS[lang]] for plot in plots), (href, plots)
        plotted += len(plots)
    assert plotted >= 2, "the series and the map were checked"
    assert not problems, "catalogue keys or markers shown:\n" + "\n".join(map(str, problems))


def test_the_approximate_map_says_so_in_the_users_language(chromium, language_app):
    driver, base = chromium, language_app["url"]
    login(driver, base, ADMIN)
    for lang in ("vi", "en"):
        driver.get(base + f"/lang/{lang}")
        texts = open_page(driver, base + "/feedback")
        assert t("map.approximate", lang) in [item["text"] for item in texts]


def test_the_language_choice_is_remembered_for_the_user_after_logout_and_login(chromium, language_app):
    driver, base = chromium, language_app["url"]
    username = "nho_ngon_ngu"
    create_user(language_app["app_db"], username, PASSWORD, "leader", display_name="Lãnh đạo")
    login(driver, base, username)
    assert t("nav.overview", "vi") in [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#nav a")]
    driver.get(base + "/lang/en")
    WebDriverWait(driver, 30).until(
        lambda d: t("nav.overview", "en") in [a.text for a in d.find_elements(By.CSS_SELECTOR, "#nav a")]
    )
    driver.find_element(By.ID, "logout-button").click()  # logout is a POST form carrying the CSRF token
    WebDriverWait(driver, 30).until(lambda d: d.current_url.endswith("/login"))
    driver.delete_all_cookies()  # another browser, another day: only the account can remember
    login(driver, base, username)
    WebDriverWait(driver, 30).until(
        lambda d: t("nav.overview", "en") in [a.text for a in d.find_elements(By.CSS_SELECTOR, "#nav a")]
    )
    assert driver.find_element(By.CSS_SELECTOR, ".app").get_attribute("lang") == "en"
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert get_user_by_name(language_app["app_db"], username).language == "en"
    save_screenshot(driver, "lang-remembered-en")
