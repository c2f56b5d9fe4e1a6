"""The browser fixture renders Vietnamese text from a local page and writes screenshots."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import ARTIFACTS, save_screenshot

PAGE = """<!doctype html>
<html lang="vi">
<head><meta charset="utf-8"><title>Trung tâm điều hành thông minh</title></head>
<body style="font-family: sans-serif; font-size: 32px">
  <h1 id="title">Trung tâm điều hành thông minh</h1>
  <p>Giao thông · Y tế · Môi trường · Dịch vụ công · Phản ánh hiện trường</p>
</body>
</html>
""".encode()


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # http.server calls do_<METHOD>
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def vietnamese_page() -> Iterator[str]:
    """URL of a tiny UTF-8 page served from 127.0.0.1 on an ephemeral port for one test."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, name="vietnamese-page", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.browser
def test_chromium_renders_vietnamese_text_and_saves_a_screenshot(chromium, vietnamese_page):
    chromium.get(vietnamese_page)
    title = WebDriverWait(chromium, 10).until(lambda d: d.find_element(By.ID, "title"))

    assert "Trung tâm điều hành" in title.text
    assert "Phản ánh hiện trường" in chromium.find_element(By.TAG_NAME, "body").text
    assert chromium.title == "Trung tâm điều hành thông minh"

    path = save_screenshot(chromium, "chromium-fixture-vietnamese")
    assert path == ARTIFACTS / "chromium-fixture-vietnamese.png"
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert path.stat().st_size > 1000
