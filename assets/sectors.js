// Sector pages: each panel ages its own datasets in the browser, like the header badge does for the
// whole page (same thresholds, same labels). Merged into the shared "ioc" namespace.
window.dash_clientside = Object.assign({}, window.dash_clientside);
window.dash_clientside.ioc = Object.assign({}, window.dash_clientside.ioc, {
  panelFreshness: function (tick, info) {
    const outputs = (window.dash_clientside.callback_context || {}).outputs_list || [];
    const targets = Array.isArray(outputs[0]) ? outputs[0] : outputs;
    const texts = [];
    const classes = [];
    targets.forEach(function (target) {
      const wanted = String((target.id || {}).datasets || "").split(",").filter(Boolean);
      const subset = {};
      wanted.forEach(function (name) {
        if (info && info.datasets && info.datasets[name]) subset[name] = info.datasets[name];
      });
      const result = window.dash_clientside.ioc.freshness(tick, {
        datasets: subset,
        labels: (info && info.labels) || null,
      });
      texts.push(result[0]);
      classes.push("panel-freshness " + result[1]);
    });
    return [texts, classes];
  },
});
