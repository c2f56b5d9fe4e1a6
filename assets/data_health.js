// Data health: each dataset's freshness labels age here, in the browser, between server updates, so a
// page cut off from the server shows its datasets turning late, then stale.
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  ioc_health: {
    ages: function (_tick, info) {
      const outputs = window.dash_clientside.callback_context.outputs_list;
      const cells = Array.isArray(outputs[0]) ? outputs[0] : [];
      const labels = (info && info.labels) || {};
      const now = Date.now();
      const texts = [];
      const classes = [];
      cells.forEach(function (cell) {
        const entry = info && info.datasets && info.datasets[cell.id.dataset];
        const d = entry ? entry[cell.id.kind] : null;
        if (!d) {
          texts.push(labels.unknown || "…");
          classes.push("freshness unknown");
          return;
        }
        const age = Math.max(0, (now - d.at_ms) / 1000);
        let status = "live";
        if (age > d.stale_after_s) status = "stale";
        else if (age > d.late_after_s) status = "late";
        let ageText;
        if (age < 60) ageText = labels.seconds.replace("{n}", Math.floor(age));
        else if (age < 3600) ageText = labels.minutes.replace("{n}", Math.floor(age / 60));
        else if (age < 86400) ageText = labels.hours.replace("{n}", Math.floor(age / 3600));
        else ageText = labels.days.replace("{n}", Math.floor(age / 86400));
        texts.push(labels[status] + " · " + labels.age.replace("{age}", ageText));
        classes.push("freshness " + status);
      });
      return [texts, classes];
    }
  }
});
