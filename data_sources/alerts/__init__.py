"""Alert thresholds and the alert lifecycle (issue 6). No Dash here.

* ``model``    — what a rule is (one KPI of one dataset, a scope, a comparator, warning and critical
  thresholds that are numbers or an entity's own attribute, hold, clear margin, no-data behaviour)
  and the validation of operator input, with one message per field.
* ``evaluate`` — the pure lifecycle: (rule, observation, previous state, now) -> new state + events;
  ok -> pending -> firing(warning|critical|no_data) -> acknowledged -> resolved.
* ``values``   — KPI values per subject (province, ward, station/facility) from a snapshot, the same
  figures the dashboards compute, and the 7-day replay behind the rules page's preview.
* ``store``    — rules, states, events and silences in the app database; every state change is a
  conditional update on the row's version, so a concurrent acknowledge and resolve leave one
  consistent state; every rule and silence change is audited.
* ``engine``   — the poller's after-poll hook tying the above together, plus the staleness sweep.
"""
