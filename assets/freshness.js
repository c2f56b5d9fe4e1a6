// Data age is computed here, in the browser, from the poll times the server last sent: a screen
// cut off from the server shows its data ageing (late, then stale) instead of looking live.
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  ioc: {
    freshness: function (_tick, info) {
      if (!info || !info.datasets || Object.keys(info.datasets).length === 0) {
        return [info && info.labels ? info.labels.unknown : "…", "freshness unknown"];
      }
      const now = Date.now();
      let worst = "live";
      let oldest = 0;
      const rank = { live: 0, late: 1, stale: 2 };
      Object.values(info.datasets).forEach(function (d) {
        const age = (now - d.polled_at_ms) / 1000;
        let status = "live";
        if (age > d.stale_after_s) status = "stale";
        else if (age > d.late_after_s) status = "late";
        if (rank[status] > rank[worst]) worst = status;
        if (age > oldest) oldest = age;
      });
      const l = info.labels;
      let ageText;
      if (oldest < 90) ageText = l.seconds.replace("{n}", Math.max(0, Math.round(oldest)));
      else if (oldest < 5400) ageText = l.minutes.replace("{n}", Math.round(oldest / 60));
      else if (oldest < 129600) ageText = l.hours.replace("{n}", Math.round(oldest / 3600));
      else ageText = l.days.replace("{n}", Math.round(oldest / 86400));
      const icon = { live: "●", late: "▲", stale: "■" }[worst];
      const text = icon + " " + l[worst] + " · " + l.age.replace("{age}", ageText);
      return [text, "freshness " + worst];
    }
  }
});
