"""Alerts area: the banner on every page, the alerts page (active + history + CSV), the rules page."""
