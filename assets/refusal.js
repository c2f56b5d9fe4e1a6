// A refused Dash request (403 forbidden, 400 malformed, 413 too large, 500) shows the server's own
// sentence in a banner instead of leaving a blank page; 401 is handled by session.js (login form).
// The banner goes away when a page is routed successfully.
(function () {
  const originalFetch = window.fetch;

  function banner() {
    let element = document.getElementById("request-refused");
    if (!element) {
      element = document.createElement("div");
      element.id = "request-refused";
      element.className = "request-refused";
      element.setAttribute("role", "alert");
      document.body.insertBefore(element, document.body.firstChild);
    }
    return element;
  }

  function show(body) {
    const element = banner();
    element.textContent = body.message + " ";
    const home = document.createElement("a");
    home.href = "/";
    home.textContent = body.home || "/";
    element.appendChild(home);
  }

  window.fetch = function (input, init) {
    return originalFetch.apply(this, arguments).then(function (response) {
      const url = typeof input === "string" ? input : (input && input.url) || "";
      if (url.indexOf("/_dash-update-component") === -1) {
        return response;
      }
      if (response.status >= 400 && response.status !== 401) {
        response.clone().json().then(function (body) {
          if (body && body.message) {
            show(body);
          }
        }).catch(function () {});
      } else if (response.ok && init && typeof init.body === "string" && init.body.indexOf("page-content.children") !== -1) {
        const element = document.getElementById("request-refused");
        if (element) {
          element.remove();
        }
      }
      return response;
    });
  };
})();
