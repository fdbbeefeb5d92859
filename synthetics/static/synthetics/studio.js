// Synthetics Studio: refreshes from the REST API every few seconds, on focus and on request (session +
// CSRF), draws the charts as plain SVG, and sends the controls through the same API (and so the same
// validation) as scripts. Each finished refresh is announced as a `studio:refreshed` event on document.
(function () {
  "use strict";

  const API = "/api/synthetics";
  const root = document.getElementById("studio");
  const refreshSeconds = Number(root.dataset.refreshSeconds || 10);
  const csrfToken = document.querySelector("[name=csrfmiddlewaretoken]").value;
  // The settings form's fields (name, kind, range, label), from the one list the server keeps.
  const settingFields = JSON.parse(document.getElementById("setting-fields").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  let current = null; // the last status answer
  let inFlight = null; // the refresh under way: a click or focus during it joins it instead of stacking
  let followUp = null; // one more refresh, queued by a change of ours made while one was under way
  let timer = null;

  async function api(path, body, method) {
    const options = {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    };
    if (body !== undefined) {
      options.method = "POST";
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRFToken"] = csrfToken;
      options.body = JSON.stringify(body);
    }
    if (method) {
      options.method = method;
      options.headers["X-CSRFToken"] = csrfToken;
    }
    const response = await fetch(API + path, options);
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = { error: "The server answered " + response.status + " without JSON." };
    }
    if (!response.ok) {
      const failure = new Error((data && data.error) || "HTTP " + response.status);
      failure.status = response.status;
      failure.data = data;
      throw failure;
    }
    return data;
  }

  const text = (id, value) => {
    const element = document.getElementById(id);
    if (element) element.textContent = value;
  };
  const clock = (iso) => new Date(iso).toISOString().slice(11, 19);
  const number = (value) => Number(value).toLocaleString("en-US");
  const wholePercent = (share) => Math.round(100 * share) + " %";
  const percent = (share) =>
    share > 0 && share < 0.0005 ? "less than 0.1 %" : (100 * share).toFixed(1) + " %";
  const sessions = (count) => `${number(count)} session${count === 1 ? "" : "s"}`;

  function renderStatus(status) {
    current = status;
    const badge = document.getElementById("status-badge");
    badge.textContent = status.status;
    badge.className = "badge badge-" + status.status;
    text("status-reason", status.status_reason);
    const last = status.last_run;
    text(
      "last-run",
      last ? `Last run ${clock(last.finished_at)} UTC: ${last.trigger}, ${last.status}` : "No run yet",
    );
    text("scene-5", number(status.activity.last_5_min.scene_events));
    text("mindblock-5", number(status.activity.last_5_min.mindblock_events));
    text("scene-24", number(status.activity.last_24_hours.scene_events));
    text("mindblock-24", number(status.activity.last_24_hours.mindblock_events));
    text("sessions-24", number(status.activity.last_24_hours.sessions_started));
    text("active-journeys", number(status.activity.active_journeys));
    text("sim-users", number(status.sim_users));
    text("sim-users-churned", number(status.sim_users_churned));
    const churnedNote = document.getElementById("sim-users-churned-note");
    if (churnedNote) churnedNote.hidden = !status.sim_users_churned;
    text("toggle", status.settings.enabled ? "Pause" : "Resume");
    const target = document.getElementById("run-target");
    // A manual run starts at most data-manual-limit sessions (1,000), whatever max_per_run allows.
    target.max = Math.min(status.settings.max_per_run, Number(target.dataset.manualLimit));
    const runs = document.getElementById("runs");
    runs.replaceChildren(
      ...(status.recent_runs.length ? status.recent_runs : [null]).map((run) => {
        const row = document.createElement("tr");
        const cells = run
          ? [clock(run.started_at),
             run.shards > 1 ? `${run.trigger} (shard ${run.shard} of ${run.shards})` : run.trigger,
             run.status, run.sessions_started,
             run.scene_events_created, run.mindblock_events_created, (run.note || run.error).slice(0, 80)]
          : ["No runs yet."];
        cells.forEach((value) => {
          const cell = document.createElement("td");
          cell.textContent = value;
          if (!run) cell.colSpan = 7;
          row.appendChild(cell);
        });
        return row;
      }),
    );
  }

  function svg(tag, attributes, content) {
    const element = document.createElementNS(SVG, tag);
    Object.entries(attributes).forEach(([key, value]) => element.setAttribute(key, value));
    if (content !== undefined) element.textContent = content;
    return element;
  }

  // What the activity charts show: [key in each point, kind (names the bar's class and its title)].
  const ACTIVITY = [["scene_events", "scene"], ["mindblock_events", "mindblock"]];

  // Grouped bars, one per kind in each bucket (scene and mindblock events by default), with a y-axis
  // maximum label; `bands` (incidents) shade the buckets whose runs they applied to.
  function drawBars(id, series, labelEvery, labelOf, kinds = ACTIVITY, bands = []) {
    const chart = document.getElementById(id);
    const width = 600, height = 200, left = 36, bottom = 22, top = 8;
    const peak = Math.max(1, ...series.flatMap((p) => kinds.map(([key]) => p[key])));
    const slot = (width - left) / Math.max(1, series.length);
    const bar = Math.max(1, slot / kinds.length - 1);
    const y = (value) => height - bottom - (value / peak) * (height - bottom - top);
    const parts = [
      svg("line", { x1: left, y1: height - bottom, x2: width, y2: height - bottom, class: "axis" }),
      svg("text", { x: left - 4, y: top + 8, class: "tick", "text-anchor": "end" }, String(peak)),
      svg("text", { x: left - 4, y: height - bottom, class: "tick", "text-anchor": "end" }, "0"),
    ];
    if (series.length > 1 && bands.length) {
      // A bucket holds the runs whose window ends in it, and a run covering minute (t, t + 1 min]
      // ends at t + 1 min: an incident over (start, end] is shaded from start + 1 min to end + 1 min.
      const first = Date.parse(series[0].bucket);
      const step = Date.parse(series[1].bucket) - first;
      const at = (ms) => left + ((ms - first + 60000) / step) * slot;
      bands.forEach((incident) => {
        const from = Math.max(left, at(Date.parse(incident.starts_at)));
        const to = Math.min(width, at(Date.parse(incident.ends_at)));
        if (to <= from) return;
        // At least 2 px wide to be seen, and kept inside the chart: a sliver at the right edge
        // (an incident begun in the last bucket) grows leftwards.
        const bandWidth = Math.max(2, to - from);
        const band = svg("rect", {
          x: Math.min(from, width - bandWidth), y: top, width: bandWidth,
          height: height - bottom - top, class: "incident-band",
        });
        band.appendChild(svg("title", {}, `Incident ${incident.id}: ${incident.label}`));
        parts.push(band);
      });
    }
    series.forEach((point, index) => {
      const x = left + index * slot;
      const title =
        `${labelOf(point)}: ` + kinds.map(([key, kind]) => `${point[key]} ${kind}`).join(", ");
      kinds.forEach(([key, kind], order) => {
        const rect = svg("rect", {
          x: x + order * bar, y: y(point[key]), width: bar,
          height: Math.max(0, height - bottom - y(point[key])), class: "bar-" + kind,
        });
        rect.appendChild(svg("title", {}, title));
        parts.push(rect);
      });
      if (index % labelEvery === 0 && x < width - 24) {
        parts.push(svg("text", { x: x, y: height - 6, class: "tick" }, labelOf(point)));
      }
    });
    chart.replaceChildren(...parts);
  }

  function drawShares(totals) {
    const box = document.getElementById("chart-outcomes");
    const shares = [
      ["completed", totals.journeys_completed],
      ["abandoned", totals.journeys_abandoned],
      ["errored", totals.journeys_errored],
    ];
    const finished = shares.reduce((sum, [, count]) => sum + count, 0);
    box.replaceChildren(
      ...shares.map(([name, count]) => {
        const share = finished ? (100 * count) / finished : 0;
        const row = document.createElement("div");
        row.className = "share";
        const label = document.createElement("span");
        label.className = "share-label";
        label.textContent = `${name} ${share.toFixed(1)} % (${number(count)})`;
        const track = document.createElement("span");
        track.className = "share-track";
        const fill = document.createElement("span");
        fill.className = "share-fill share-" + name;
        fill.style.width = share.toFixed(1) + "%";
        track.appendChild(fill);
        row.append(label, track);
        return row;
      }),
    );
  }

  function renderRhythm(rhythm) {
    text("rhythm-strength", String(rhythm.strength));
    text("rhythm-now", rhythm.rate_now.toFixed(2));
    text("rhythm-quietest", rhythm.quietest_rate.toFixed(2));
    text("rhythm-peak", rhythm.peak_rate.toFixed(2));
    text("rhythm-week", number(Math.round(rhythm.expected_sessions_week)));
    text(
      "rhythm-trim",
      `At these settings max_per_run trims ${percent(rhythm.cap_trimmed_share)} of the next week's sessions.`,
    );
  }

  // Little's law, from the insights: a warning with the numbers when the pool cannot sustain the
  // settings, else one line saying how much of the pool the week's peak keeps busy.
  function renderCapacity(capacity) {
    const warning = document.getElementById("capacity-warning");
    warning.hidden = !capacity.warning;
    warning.textContent = capacity.warning || "";
    text(
      "capacity-line",
      `At the week's peak about ${number(Math.round(capacity.needed_users))} of ` +
        `${number(capacity.active_users)} active sim users are in a session or about to start ` +
        `one (journeys of ${capacity.mean_journey_minutes.toFixed(1)} minutes on average).`,
    );
  }

  // One row per scene: its name and numbers, a bar for the share of sessions observed reaching it
  // and a marker where the catalogue's weights put it. The numbers are the image's label too.
  function funnelChart(funnel) {
    const width = 360, row = 36, top = 4;
    const steps = funnel.steps;
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${top + steps.length * row}`, role: "img", class: "funnel-chart",
    });
    const said = steps.map((step) => {
      const observed = step.observed === null ? "no sessions" : wholePercent(step.observed);
      return `${step.position}. ${step.scene}: observed ${observed}, implied ${wholePercent(step.implied)}`;
    });
    chart.setAttribute("aria-label", `${funnel.template}, ${sessions(funnel.sessions)}. ${said.join("; ")}.`);
    steps.forEach((step, index) => {
      const y0 = top + index * row;
      const observed = step.observed === null ? "–" : wholePercent(step.observed);
      const group = svg("g", { class: "funnel-step" });
      group.append(
        svg("title", {}, said[index]),
        svg("text", { x: 0, y: y0 + 12, class: "funnel-label" }, `${step.position}. ${step.scene}`),
        svg("text", { x: width, y: y0 + 12, class: "funnel-label", "text-anchor": "end" },
            `${observed} (implied ${wholePercent(step.implied)})`),
        svg("rect", { x: 0, y: y0 + 17, width: width, height: 12, class: "funnel-track" }),
      );
      if (step.observed !== null) {
        // Sessions that entered the first scene before the window can make a later share exceed 1.
        const share = Math.min(1, Math.max(0, step.observed));
        group.appendChild(
          svg("rect", { x: 0, y: y0 + 17, width: share * width, height: 12, class: "bar-observed" }),
        );
      }
      const at = Math.min(width - 1.5, Math.max(1.5, step.implied * width));
      group.appendChild(
        svg("line", { x1: at, y1: y0 + 14, x2: at, y2: y0 + 32, class: "funnel-implied" }),
      );
      chart.appendChild(group);
    });
    return chart;
  }

  function drawFunnels(funnels) {
    const box = document.getElementById("funnels");
    if (!funnels.length) {
      const empty = document.createElement("p");
      empty.className = "muted";
      empty.textContent = "No journey template has scenes.";
      box.replaceChildren(empty);
      return;
    }
    box.replaceChildren(
      ...funnels.map((funnel) => {
        const figure = document.createElement("figure");
        figure.className = "chart funnel";
        figure.dataset.template = funnel.template;
        const caption = document.createElement("figcaption");
        caption.textContent = funnel.template + " ";
        const count = document.createElement("span");
        count.className = "muted funnel-sessions";
        count.textContent = funnel.sessions ? sessions(funnel.sessions) : "no sessions in the last 24 h";
        caption.appendChild(count);
        figure.append(caption, funnelChart(funnel));
        return figure;
      }),
    );
  }

  // Retention cells get a shade by tenths (heat-0 ... heat-9): classes, as the CSP refuses inline styles.
  function renderEngagement(engagement, curve) {
    const ratio = (value) => (value === null ? "no data yet" : `${(value * 100).toFixed(0)} %`);
    document.getElementById("stickiness").textContent =
      `${engagement.mau} users active in ${engagement.days} days; DAU/MAU ${ratio(engagement.dau_over_mau)}, ` +
      `DAU/WAU ${ratio(engagement.dau_over_wau)} (consumer apps: about 20–30 % and 45 %).`;
    drawBars("chart-days-active", engagement.days_active, 3, (p) => String(p.days), [["users", "users"]]);
    const points = curve
      .filter((p) => p.share !== null)
      .map((p) => ({ day: p.day, percent: Math.round(p.share * 1000) / 10 }));
    drawBars("chart-retention", points, 5, (p) => "D" + p.day, [["percent", "percent"]]);
  }

  function renderCohorts(cohorts) {
    const columns = Number(document.getElementById("cohorts-table").dataset.weeks);
    const rows = document.getElementById("cohorts");
    rows.replaceChildren(
      ...cohorts.map((cohort) => {
        const row = document.createElement("tr");
        const head = document.createElement("th");
        head.scope = "row";
        head.textContent = `${cohort.cohort} (${number(cohort.users)})`;
        row.appendChild(head);
        for (let week = 0; week < columns; week += 1) {
          const cell = document.createElement("td");
          const share = cohort.retention[week];
          if (share !== undefined && share !== null) {
            cell.textContent = wholePercent(share);
            cell.className = "heat-" + Math.min(9, Math.max(0, Math.floor(share * 10)));
          }
          row.appendChild(cell);
        }
        return row;
      }),
    );
  }

  // Expected versus observed, one row per metric: its band (the interval) as a bar, the expected
  // value as a line, the observed value as a mark; the verdict in words above. Each row is scaled
  // to its own band, so counts and shares sit side by side.
  function renderFidelity(report) {
    text("fidelity-summary", report.summary);
    const summary = document.getElementById("fidelity-summary");
    summary.className = report.fidelity === "drifting" ? "alert" : "";
    const width = 720, row = 30, label = 170, top = 4;
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${top + report.metrics.length * row}`, role: "img",
      "aria-label": report.summary,
    });
    report.metrics.forEach((metric, index) => {
      const y0 = top + index * row;
      const seen = metric.observed;
      const lowest = Math.min(metric.low, seen === null ? metric.low : seen);
      const highest = Math.max(metric.high, seen === null ? metric.high : seen, lowest + 1e-9);
      const pad = (highest - lowest) * 0.15 || 1;
      const from = lowest - pad, to = highest + pad;
      const x = (value) => label + ((value - from) / (to - from)) * (width - label - 8);
      const shown = (value) => (Math.abs(value) < 1 && value !== 0 ? value.toFixed(3) : number(Math.round(value)));
      const said = `${metric.metric}: expected ${shown(metric.expected)} (${shown(metric.low)}–${shown(metric.high)}), ` +
        `observed ${seen === null ? "nothing yet" : shown(seen)}: ${metric.verdict.replace("_", " ")}`;
      const group = svg("g", {});
      group.append(
        svg("title", {}, said),
        svg("text", { x: 0, y: y0 + 18, class: "funnel-label" }, metric.metric.replace("_", " ")),
        svg("rect", {
          x: x(metric.low), y: y0 + 6, width: Math.max(1, x(metric.high) - x(metric.low)), height: 16,
          class: "fidelity-band",
        }),
        svg("line", { x1: x(metric.expected), x2: x(metric.expected), y1: y0 + 4, y2: y0 + 24, class: "fidelity-expected" }),
      );
      if (seen !== null) {
        group.appendChild(svg("rect", {
          x: x(seen) - 3, y: y0 + 3, width: 6, height: 22,
          class: "fidelity-observed" + (metric.verdict === "drifting" ? " drifting" : ""),
        }));
      }
      chart.appendChild(group);
    });
    document.getElementById("fidelity-chart").replaceChildren(chart);
  }

  function renderInsights(insights) {
    renderRhythm(insights.rhythm);
    renderCapacity(insights.capacity);
    drawFunnels(insights.funnels);
    drawBars("chart-dau", insights.daily_active_users, 5, (p) => p.day.slice(5), [["users", "users"]]);
    renderCohorts(insights.cohorts);
    renderEngagement(insights.engagement, insights.retention_curve);
  }

  // Draw one part of the page from its settled answer; say what failed instead of throwing.
  function drawPart(answer, draw, failures, name) {
    try {
      if (answer.status === "rejected") throw answer.reason;
      draw(answer.value);
    } catch (error) {
      failures.push(name ? `${name}: ${error.message}` : error.message);
    }
  }

  async function load(reason) {
    const startedAt = new Date().toISOString();
    const failures = [];
    // Status and activity are one picture; the insights are drawn apart from it, so that when one
    // side fails the other still shows current numbers. The refresh ends when both are in.
    // The incidents are fetched beside them: when that fails, the numbers and charts still show
    // (without bands), and the failure is named.
    const [main, extra, listed, fidelity] = await Promise.allSettled([
      Promise.all([api("/status"), api("/activity/1"), api("/activity/24")]),
      api("/insights"),
      api("/incidents?hours=24"),
      api("/expectations?hours=1"),
    ]);
    const incidents = listed.status === "fulfilled" ? listed.value.incidents : [];
    drawPart(main, ([status, hour, day]) => {
      renderStatus(status);
      const bands = incidents.filter((i) => i.ends_at > i.starts_at);
      drawBars("chart-hour", hour.series, 10, (p) => clock(p.bucket).slice(0, 5), ACTIVITY, bands);
      drawBars("chart-day", day.series, 4, (p) => clock(p.bucket).slice(0, 2) + "h", ACTIVITY, bands);
      drawShares(day.totals);
      text("refresh-state", "Refreshed " + clock(new Date().toISOString()) + " UTC");
    }, failures);
    drawPart(extra, renderInsights, failures, "insights");
    drawPart(listed, (answer) => renderIncidents(answer.incidents), failures, "incidents");
    drawPart(fidelity, renderFidelity, failures, "expectations");
    const banner = document.getElementById("refresh-error");
    banner.hidden = !failures.length;
    if (failures.length) {
      banner.textContent =
        "Refresh failed at " + clock(new Date().toISOString()) + " UTC: " + failures.join("; ") +
        ". Showing the last numbers; retrying in " + refreshSeconds + " s.";
    }
    // The next automatic refresh is a full period after this one, however this one was asked for.
    window.clearTimeout(timer);
    timer = window.setTimeout(() => refresh("timer"), refreshSeconds * 1000);
    document.dispatchEvent(
      new CustomEvent("studio:refreshed", {
        detail: {
          reason: reason,
          ok: !failures.length,
          error: failures.length ? failures.join("; ") : null,
          startedAt: startedAt,
          finishedAt: new Date().toISOString(),
        },
      }),
    );
  }

  // Refresh now, unless a refresh is under way: then join it, or, after a change of ours that it may
  // have missed (`afterChange`), queue one more for when it ends. Never more than one request set at once.
  function refresh(reason, { afterChange = false } = {}) {
    if (!inFlight) {
      const button = document.getElementById("refresh-now");
      button.setAttribute("aria-busy", "true");
      inFlight = load(reason).finally(() => {
        inFlight = null;
        button.removeAttribute("aria-busy");
      });
      return inFlight;
    }
    if (!afterChange) return inFlight;
    if (!followUp) {
      followUp = inFlight.then(() => {
        followUp = null;
        return refresh(reason);
      });
    }
    return followUp;
  }

  // The incidents' table: newest start first, a Cancel button on those not over (for steerers).
  function renderIncidents(incidents) {
    const canChange = root.dataset.canChange === "true";
    const rows = document.getElementById("incidents");
    if (!incidents.length) {
      const row = document.createElement("tr");
      const cell = document.createElement("td");
      cell.colSpan = 7;
      cell.textContent = "No incidents.";
      row.appendChild(cell);
      rows.replaceChildren(row);
      return;
    }
    rows.replaceChildren(
      ...incidents.map((incident) => {
        const row = document.createElement("tr");
        const changes = [
          ["error_rate", "errors"], ["abandon_rate", "abandons"], ["sessions_multiplier", "sessions ×"],
        ]
          .filter(([key]) => incident[key] !== null)
          .map(([key, name]) => `${name} ${incident[key]}`)
          .join(", ");
        const scope = [incident.template, incident.scene && "scene " + incident.scene]
          .filter(Boolean)
          .join(", ") || "every session";
        const starts = incident.starts_at.slice(0, 16).replace("T", " ");
        [incident.label, incident.state.replace("_", " "), starts, incident.minutes, changes, scope]
          .forEach((value) => {
            const cell = document.createElement("td");
            cell.textContent = value;
            row.appendChild(cell);
          });
        const action = document.createElement("td");
        if (canChange && (incident.state === "upcoming" || incident.state === "in_progress")) {
          const button = document.createElement("button");
          button.type = "button";
          button.className = "secondary incident-cancel";
          button.dataset.incident = incident.id;
          button.textContent = "Cancel";
          button.setAttribute("aria-label", `Cancel incident ${incident.label}`);
          action.appendChild(button);
        }
        row.appendChild(action);
        return row;
      }),
    );
  }

  function say(message, isError) {
    const element = document.getElementById("control-message");
    element.textContent = message;
    element.className = "message" + (isError ? " message-error" : "");
  }

  function clearFieldErrors() {
    document.querySelectorAll("#settings-form .error").forEach((element) => (element.textContent = ""));
    document.querySelectorAll("#settings-form input").forEach((input) => input.removeAttribute("aria-invalid"));
  }

  document.getElementById("toggle").addEventListener("click", async () => {
    const enabled = !(current ? current.settings.enabled : true);
    try {
      await api("/toggle", { enabled: enabled });
      say(enabled ? "Generation resumed." : "Generation paused.");
    } catch (error) {
      say(error.message, true);
    }
    refresh("toggle", { afterChange: true });
  });

  document.getElementById("run-now").addEventListener("submit", async (event) => {
    event.preventDefault();
    const raw = document.getElementById("run-target").value;
    const target = raw === "" ? raw : Number(raw);
    try {
      const answer = await api("/run-now", { target: target });
      const result = answer.result;
      say(`Started ${result.sessions_started} sessions: ${result.scene_events_created} scene events, ` +
          `${result.mindblock_events_created} mindblock events.`);
    } catch (error) {
      say(error.message, true);
    }
    refresh("run-now", { afterChange: true });
  });

  document.getElementById("settings-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors();
    const changes = {};
    settingFields.forEach(({ name }) => {
      const input = document.getElementById(name);
      const value = input.value.trim() === "" ? input.value : Number(input.value);
      if (!current || value !== current.settings[name]) changes[name] = value;
    });
    if (!Object.keys(changes).length) {
      say("Nothing to save: the settings are unchanged.");
      return;
    }
    try {
      const saved = await api("/settings", changes);
      say(["Settings saved.", ...((saved && saved.warnings) || [])].join(" "));
    } catch (error) {
      const fields = (error.data && error.data.fields) || {};
      Object.entries(fields).forEach(([name, messages]) => {
        const slot = document.getElementById("error-" + name);
        if (slot) {
          slot.textContent = messages.join(" ");
          document.getElementById(name).setAttribute("aria-invalid", "true");
        }
      });
      say(error.message, true);
    }
    refresh("settings", { afterChange: true });
  });

  function sayIncident(message, isError) {
    const element = document.getElementById("incident-message");
    element.textContent = message;
    element.className = "message" + (isError ? " message-error" : "");
  }

  const incidentForm = document.getElementById("incident-form");
  incidentForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = incidentForm.querySelector("button[type=submit]");
    if (submit.disabled) return; // one request at a time: a double click schedules once
    incidentForm.querySelectorAll(".error").forEach((slot) => (slot.textContent = ""));
    incidentForm.querySelectorAll("input, select").forEach((input) => input.removeAttribute("aria-invalid"));
    const value = (id) => document.getElementById("incident-" + id).value.trim();
    const inMinutes = value("in") === "" ? 0 : Number(value("in"));
    if (!Number.isInteger(inMinutes) || inMinutes < 0) {
      document.getElementById("incident-error-starts_at").textContent =
        "Starts in: a whole number of minutes from now, 0 or more.";
      document.getElementById("incident-in").setAttribute("aria-invalid", "true");
      sayIncident("Nothing scheduled: see the field above.", true);
      return;
    }
    // The next whole minute, plus the minutes asked for: incidents start on a whole minute.
    const start = new Date(Math.ceil(Date.now() / 60000) * 60000 + inMinutes * 60000);
    const body = {
      starts_at: start.toISOString(),
      minutes: value("minutes") === "" ? value("minutes") : Number(value("minutes")),
      label: value("label"),
    };
    ["error_rate", "abandon_rate", "sessions_multiplier"].forEach((name) => {
      if (value(name) !== "") body[name] = Number(value(name));
    });
    if (value("template")) body.template = value("template");
    if (value("scene")) body.scene = value("scene");
    submit.disabled = true;
    try {
      const answer = await api("/incidents", body);
      sayIncident(`Incident ${answer.incident.id} scheduled from ${clock(answer.incident.starts_at)} UTC.`);
    } catch (error) {
      const fields = (error.data && error.data.fields) || {};
      Object.entries(fields).forEach(([name, messages]) => {
        const slot = document.getElementById("incident-error-" + name);
        if (slot) slot.textContent = messages.join(" ");
        const input = document.getElementById("incident-" + (name === "starts_at" ? "in" : name));
        if (input) input.setAttribute("aria-invalid", "true");
      });
      sayIncident(error.message, true);
    } finally {
      submit.disabled = false;
    }
    refresh("incident", { afterChange: true });
  });

  document.getElementById("incidents").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-incident]");
    if (!button || button.disabled) return; // a double click cancels once
    button.disabled = true;
    try {
      const answer = await api("/incidents/" + button.dataset.incident, undefined, "DELETE");
      sayIncident(`Incident ${answer.incident.id} cancelled.`);
    } catch (error) {
      sayIncident(error.message, true);
      button.disabled = false;
    }
    refresh("incident", { afterChange: true });
  });

  document.getElementById("refresh-now").addEventListener("click", () => refresh("button"));
  // Coming back to the tab or the window shows current numbers at once, not at the next tick.
  window.addEventListener("focus", () => refresh("focus"));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh("visible");
  });

  refresh("load");
})();
