// A 401 from any Dash request means the session is gone: go to the login page instead of leaving
// old numbers on screen looking live.
(function () {
  const originalFetch = window.fetch;
  window.fetch = function (input, init) {
    return originalFetch.apply(this, arguments).then(function (response) {
      const url = typeof input === "string" ? input : (input && input.url) || "";
      if (response.status === 401 && url.indexOf("/_dash-") !== -1) {
        const next = window.location.pathname + window.location.search;
        window.location.assign("/login?next=" + encodeURIComponent(next));
      }
      return response;
    });
  };
})();
