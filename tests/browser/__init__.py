"""Browser tests: drive Debian's headless Chromium through Selenium (marker ``browser``)."""
