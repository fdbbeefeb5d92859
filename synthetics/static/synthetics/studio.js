// Synthetics Studio: refreshes from the REST API every few seconds, on focus and on request (session +
// CSRF), draws the charts as plain SVG, and sends the controls through the same API (and so the same
// validation) as scripts. Each finished refresh is announced as a `studio:refreshed` event on document.
// Every chart's viewBox is sized to the width it is drawn at (and redrawn when that changes), so one
// unit is one CSS pixel and chart text is as large on a phone as on a desktop.
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
  let statusTickets = 0; // each status request takes a number; an older answer never overwrites a newer
  let statusShown = 0;
  // The activity chart's range: the last `hours`, or `since` to `until` (null: now), as chosen.
  let range = { hours: 24 };
  let rangeShown = range; // the last range the API drew: the one to go back to when it refuses another

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

  function showBadge(status, reason, ticket) {
    if (ticket < statusShown) return false; // an answer to an older request
    statusShown = ticket;
    const badge = document.getElementById("status-badge");
    badge.textContent = status;
    badge.className = "badge badge-" + status;
    text("status-reason", reason);
    return true;
  }

  function renderSettings(settings) {
    if (current) current.settings = settings;
    text("toggle", settings.enabled ? "Pause" : "Resume");
    const target = document.getElementById("run-target");
    // A manual run starts at most data-manual-limit sessions (1,000), whatever max_per_run allows.
    target.max = Math.min(settings.max_per_run, Number(target.dataset.manualLimit));
  }

  const RUN_COLUMNS = ["Started (UTC)", "Trigger", "Status", "Sessions", "Scene events", "Mindblock events", "Note"];

  function renderStatus(status, ticket) {
    if (!showBadge(status.status, status.status_reason, ticket)) return;
    current = status;
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
    renderSettings(status.settings);
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
        cells.forEach((value, index) => {
          const cell = document.createElement("td");
          cell.textContent = value;
          cell.dataset.label = RUN_COLUMNS[index];
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
  const CHART_HEIGHT = 220;
  const CHAR_WIDTH = 7.2; // a 12 px label's mean character width, to plan the ticks before measuring

  // Charts drawn from their last data, by key: redrawn when their width changes.
  const redraws = new Map();
  const widths = new Map();
  function drawn(key, draw) {
    redraws.set(key, draw);
    draw();
  }
  let resizeQueued = false;
  const resizer = new ResizeObserver(() => {
    if (resizeQueued) return;
    resizeQueued = true;
    window.requestAnimationFrame(() => {
      resizeQueued = false;
      redraws.forEach((draw, key) => {
        const element = document.getElementById(key);
        const width = element ? Math.floor(element.getBoundingClientRect().width) : 0;
        if (width && width !== widths.get(key)) draw();
      });
      markOverflow();
    });
  });

  // Size the chart's coordinates to the width it is drawn at: one unit, one CSS pixel.
  function fit(chart, height) {
    const width = Math.max(160, Math.floor(chart.getBoundingClientRect().width) || 600);
    widths.set(chart.id, width);
    chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
    return width;
  }

  // A "nice" scale for 0..peak in about `count` steps of 1, 2 or 5 times a power of ten.
  function niceTicks(peak, count, whole) {
    const raw = Math.max(peak, whole ? 1 : 1e-9) / Math.max(1, count);
    const power = 10 ** Math.floor(Math.log10(raw));
    const factors = whole && power < 10 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
    let step = factors.map((factor) => factor * power).find((candidate) => candidate >= raw);
    if (whole) step = Math.max(1, Math.round(step));
    const top = Math.max(step, Math.ceil(peak / step - 1e-9) * step);
    const ticks = [];
    for (let value = 0; value <= top + step / 2; value += step) ticks.push(Math.round(value * 1e6) / 1e6);
    return ticks;
  }

  const tickText = (value, unit) =>
    (Number.isInteger(value) ? number(value) : value.toLocaleString("en-US", { maximumFractionDigits: 2 })) +
    (unit || "");

  // Keep the labels that do not overlap the one kept before (measured, now that they are drawn).
  function dropOverlaps(labels) {
    let end = -Infinity;
    labels.forEach((label) => {
      const box = label.getBBox();
      if (box.x < end + 6) label.remove();
      else end = box.x + box.width;
    });
  }

  // Grouped bars, one per kind in each bucket (scene and mindblock events by default) under a y axis
  // of nice ticks with gridlines; x labels at round positions that never overlap. A null value is
  // "no data yet": no bar, a shaded gap saying so. `bands` (incidents) shade the buckets whose
  // runs they applied to. Options: label(point) the x label, title(point) the tooltip's head,
  // position(point) a whole number (labels go where it is a multiple of the stride), kinds, bands,
  // unit (after tick values).
  function drawBars(id, series, options) {
    const chart = document.getElementById(id);
    drawn(id, () => drawBarsNow(chart, series, options));
  }

  function drawBarsNow(chart, series, options) {
    const { label, title = label, position = (point, index) => index, kinds = ACTIVITY, bands = [], unit = "" } = options;
    const width = fit(chart, CHART_HEIGHT);
    const height = CHART_HEIGHT, bottom = 24, top = 10, right = 6;
    const values = series.flatMap((p) => kinds.map(([key]) => p[key])).filter((v) => v !== null);
    // (an empty or all-zero chart still gets a scale: 0 to 1)
    const ticks = niceTicks(values.length ? Math.max(1, ...values) : unit ? 100 : 1, Math.max(2, Math.floor((height - top - bottom) / 42)), !unit);
    const peak = ticks[ticks.length - 1];
    const left = 10 + Math.max(...ticks.map((tick) => tickText(tick, unit).length)) * CHAR_WIDTH;
    const plotRight = width - right;
    const slot = (plotRight - left) / Math.max(1, series.length);
    const bar = Math.max(1, slot / kinds.length - (slot > 4 ? 1 : 0));
    const y = (value) => height - bottom - (value / peak) * (height - bottom - top);
    chart.dataset.plotLeft = left;
    chart.dataset.plotRight = plotRight;
    const parts = [];
    ticks.forEach((tick) => {
      parts.push(
        svg("line", { x1: left, y1: y(tick), x2: plotRight, y2: y(tick), class: tick ? "grid" : "axis" }),
        svg("text", { x: left - 6, y: y(tick) + 4, class: "tick tick-y", "text-anchor": "end" }, tickText(tick, unit)),
      );
    });
    if (series.length > 1 && bands.length) {
      // A bucket holds the runs whose window ends in it, and a run covering minute (t, t + 1 min]
      // ends at t + 1 min: an incident over (start, end] is shaded from start + 1 min to end + 1 min.
      const first = Date.parse(series[0].bucket);
      const step = Date.parse(series[1].bucket) - first;
      const at = (ms) => left + ((ms - first + 60000) / step) * slot;
      bands.forEach((incident) => {
        const from = Math.max(left, at(Date.parse(incident.starts_at)));
        const to = Math.min(plotRight, at(Date.parse(incident.ends_at)));
        if (to <= from) return;
        // At least 2 px wide to be seen, and kept inside the chart: a sliver at the right edge
        // (an incident begun in the last bucket) grows leftwards.
        const bandWidth = Math.max(2, to - from);
        const band = svg("rect", {
          x: Math.min(from, plotRight - bandWidth), y: top, width: bandWidth,
          height: height - bottom - top, class: "incident-band",
        });
        band.appendChild(svg("title", {}, `Incident ${incident.id}: ${incident.label}`));
        parts.push(band);
      });
    }
    // Runs of buckets with no data yet: one shaded gap each, labelled where it has room.
    let gapFrom = null;
    const gaps = [];
    series.forEach((point, index) => {
      const empty = kinds.every(([key]) => point[key] === null);
      if (empty && gapFrom === null) gapFrom = index;
      if ((!empty || index === series.length - 1) && gapFrom !== null) {
        gaps.push([gapFrom, empty ? index + 1 : index]);
        gapFrom = null;
      }
    });
    gaps.forEach(([from, to]) => {
      const x = left + from * slot, gapWidth = (to - from) * slot;
      const gap = svg("rect", { x: x, y: top, width: gapWidth, height: height - bottom - top, class: "no-data" });
      gap.appendChild(svg("title", {}, "no data yet"));
      parts.push(gap);
      if (gapWidth >= 84) {
        parts.push(svg("text", { x: x + gapWidth / 2, y: (top + height - bottom) / 2, class: "no-data-label", "text-anchor": "middle" }, "no data yet"));
      }
    });
    series.forEach((point, index) => {
      const x = left + index * slot;
      const said = kinds.map(([key, kind]) => `${point[key] === null ? "no data yet" : point[key] + unit} ${kind}`);
      kinds.forEach(([key, kind], order) => {
        if (point[key] === null) return;
        const rect = svg("rect", {
          x: x + order * bar, y: y(point[key]), width: bar,
          height: Math.max(0, height - bottom - y(point[key])), class: "bar-" + kind,
        });
        rect.appendChild(svg("title", {}, `${title(point)}: ${said.join(", ")}`));
        parts.push(rect);
      });
    });
    // The x labels: every `stride`-th position, the stride the smallest round one whose labels fit.
    const longest = Math.max(1, ...series.map((point) => label(point).length)) * CHAR_WIDTH + 12;
    const need = Math.ceil(longest / Math.max(slot, 0.01));
    const stride = (options.strides || [1, 2, 5, 10, 20, 50, 100]).find((candidate) => candidate >= need) || need;
    const labels = [];
    series.forEach((point, index) => {
      if (position(point, index) % stride !== 0) return;
      const centre = left + (index + 0.5) * slot;
      labels.push(svg("text", { x: centre, y: height - 6, class: "tick tick-x", "text-anchor": "middle" }, label(point)));
    });
    if (!series.length) {
      parts.push(svg("text", { x: (left + plotRight) / 2, y: (top + height - bottom) / 2, class: "no-data-label", "text-anchor": "middle" }, "no data yet"));
    }
    chart.replaceChildren(...parts, ...labels);
    // Kept inside the chart, then thinned where measuring shows an overlap.
    labels.forEach((text) => {
      const box = text.getBBox();
      if (box.x < 0) text.setAttribute("x", Number(text.getAttribute("x")) - box.x);
      else if (box.x + box.width > width) text.setAttribute("x", Number(text.getAttribute("x")) - (box.x + box.width - width));
    });
    dropOverlaps(labels);
  }

  // Time labels and positions for a series of buckets of `bucket` ("minute", "hour" or "day").
  const STEP_MS = { minute: 60000, hour: 3600000, day: 86400000 };
  function timeAxis(bucket) {
    const step = STEP_MS[bucket];
    const position = (point) => Math.round(Date.parse(point.bucket) / step);
    if (bucket === "minute") {
      return { position, strides: [1, 2, 5, 10, 15, 20, 30, 60, 120], label: (p) => clock(p.bucket).slice(0, 5), title: (p) => clock(p.bucket).slice(0, 5) };
    }
    if (bucket === "hour") {
      return {
        position,
        strides: [1, 2, 3, 4, 6, 12, 24, 48, 72, 168],
        // Midnight is named by its date, other hours by their time.
        label: (p) => (p.bucket.slice(11, 13) === "00" ? p.bucket.slice(5, 10) : p.bucket.slice(11, 13) + ":00"),
        title: (p) => p.bucket.slice(5, 10) + " " + p.bucket.slice(11, 13) + ":00",
      };
    }
    return {
      position, strides: [1, 2, 3, 5, 7, 14, 30], label: (p) => p.bucket.slice(5, 10), title: (p) => p.bucket.slice(0, 10),
    };
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
  function funnelChart(chart, funnel) {
    const row = 36, top = 4;
    const steps = funnel.steps;
    const width = fit(chart, top + steps.length * row);
    chart.replaceChildren();
    const said = steps.map((step) => {
      const observed = step.observed === null ? "no sessions" : wholePercent(step.observed);
      return `${step.position}. ${step.scene}: observed ${observed}, implied ${wholePercent(step.implied)}`;
    });
    chart.setAttribute("aria-label", `${funnel.template}, ${sessions(funnel.sessions)}. ${said.join("; ")}.`);
    steps.forEach((step, index) => {
      const y0 = top + index * row;
      const observed = step.observed === null ? "–" : wholePercent(step.observed);
      const group = svg("g", { class: "funnel-step" });
      const name = svg("text", { x: 0, y: y0 + 12, class: "funnel-label" }, `${step.position}. ${step.scene}`);
      const numbers = svg("text", { x: width, y: y0 + 12, class: "funnel-label", "text-anchor": "end" },
        `${observed} (implied ${wholePercent(step.implied)})`);
      group.append(
        svg("title", {}, said[index]),
        name,
        numbers,
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
      // Where the scene's name and the numbers would meet, the numbers lose their words.
      if (name.getBBox().width + numbers.getBBox().width + 10 > width) {
        numbers.textContent = `${observed} / ${wholePercent(step.implied)}`;
      }
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
    [...redraws.keys()].filter((key) => key.startsWith("funnel-")).forEach((key) => redraws.delete(key));
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
        const chart = svg("svg", { role: "img", class: "funnel-chart", id: "funnel-" + funnel.template });
        figure.append(caption, chart);
        return figure;
      }),
    );
    // Drawn once in the page, where their width is known.
    funnels.forEach((funnel) => {
      const chart = document.getElementById("funnel-" + funnel.template);
      drawn(chart.id, () => funnelChart(chart, funnel));
      resizer.observe(chart);
    });
  }

  // Retention cells get a shade by tenths (heat-0 ... heat-9): classes, as the CSP refuses inline styles.
  function renderEngagement(engagement, curve) {
    const ratio = (value) => (value === null ? "no data yet" : `${(value * 100).toFixed(0)} %`);
    document.getElementById("stickiness").textContent =
      `${engagement.mau} users active in ${engagement.days} days; DAU/MAU ${ratio(engagement.dau_over_mau)}, ` +
      `DAU/WAU ${ratio(engagement.dau_over_wau)} (consumer apps: about 20–30 % and 45 %).`;
    drawBars("chart-days-active", engagement.days_active, {
      label: (p) => String(p.days), title: (p) => `${p.days} days`, position: (p) => p.days,
      kinds: [["users", "users"]],
    });
    const points = curve
      .filter((p) => p.share !== null)
      .map((p) => ({ day: p.day, percent: Math.round(p.share * 1000) / 10 }));
    drawBars("chart-retention", points, {
      label: (p) => "D" + p.day, position: (p) => p.day, kinds: [["percent", "active"]], unit: " %",
    });
  }

  // A table wider than its box scrolls inside it (never the page), and then says so below it.
  function markOverflow() {
    document.querySelectorAll(".table-wrap").forEach((wrap) => {
      wrap.classList.toggle("overflows", wrap.scrollWidth > wrap.clientWidth + 1);
    });
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
          if (share === null && cohort.users) {
            // A week that ended before the first session kept: no data, not 0 %.
            cell.textContent = "—";
            cell.title = "no data yet";
            cell.setAttribute("aria-label", "no data yet");
            cell.className = "no-data-cell";
          } else if (share !== undefined && share !== null) {
            const unit = document.createElement("span");
            unit.className = "unit";
            unit.textContent = " %";
            cell.append(String(Math.round(100 * share)), unit);
            cell.className = "heat-" + Math.min(9, Math.max(0, Math.floor(share * 10)));
          }
          row.appendChild(cell);
        }
        return row;
      }),
    );
    markOverflow();
  }

  // Expected versus observed, one row per metric: its band (the interval) as a bar, the expected
  // value as a line, the observed value as a mark; the verdict in words above. Each row is scaled
  // to its own band, so counts and shares sit side by side.
  function renderFidelity(report) {
    text("fidelity-summary", report.summary);
    const summary = document.getElementById("fidelity-summary");
    summary.className = report.fidelity === "drifting" ? "alert" : "";
    const box = document.getElementById("fidelity-chart");
    let chart = document.getElementById("fidelity-svg");
    if (!chart) {
      chart = svg("svg", { role: "img", id: "fidelity-svg" });
      box.replaceChildren(chart);
      resizer.observe(chart);
    }
    chart.setAttribute("aria-label", report.summary);
    drawn("fidelity-svg", () => drawFidelity(chart, report));
  }

  function drawFidelity(chart, report) {
    const row = 30, top = 4;
    const width = fit(chart, top + report.metrics.length * row);
    const label = Math.min(170, Math.round(width * 0.38));
    chart.replaceChildren();
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
  }

  function renderInsights(insights) {
    renderRhythm(insights.rhythm);
    renderCapacity(insights.capacity);
    drawFunnels(insights.funnels);
    drawBars("chart-dau", insights.daily_active_users, {
      label: (p) => p.day.slice(5), position: (p) => Math.round(Date.parse(p.day) / 86400000),
      strides: [1, 2, 3, 5, 7, 14, 30],
      kinds: [["users", "users"]],
    });
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
    // The chosen range is fetched apart too: a range the API refuses is said by the range picker,
    // and the rest of the page still refreshes.
    const ticket = ++statusTickets;
    const asked = range;
    const [main, chosen, extra, listed, fidelity] = await Promise.allSettled([
      Promise.all([api("/status"), api("/activity/1")]),
      api("/activity" + rangeQuery(asked)),
      api("/insights"),
      api("/incidents?hours=" + incidentHours(asked)),
      api("/expectations?hours=1"),
    ]);
    const incidents = listed.status === "fulfilled" ? listed.value.incidents : [];
    const bands = incidents.filter((i) => i.ends_at > i.starts_at);
    drawPart(main, ([status, hour]) => {
      renderStatus(status, ticket);
      drawBars("chart-hour", hour.series, { ...timeAxis("minute"), bands: bands });
      text("refresh-state", "Refreshed " + clock(new Date().toISOString()) + " UTC");
    }, failures);
    if (chosen.status === "rejected" && chosen.reason.status === 400) {
      rangeRefused(chosen.reason);
      if (range === asked) range = rangeShown; // the next refreshes draw the last good range again
    } else {
      if (chosen.status === "fulfilled") rangeShown = asked;
      drawPart(chosen, (answer) => renderRange(answer, asked, bands), failures, "range");
    }
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

  const INCIDENT_COLUMNS = ["Label", "State", "Starts (UTC)", "Minutes", "Changes", "On"];

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
          .forEach((value, index) => {
            const cell = document.createElement("td");
            cell.textContent = value;
            cell.dataset.label = INCIDENT_COLUMNS[index];
            row.appendChild(cell);
          });
        const action = document.createElement("td");
        action.dataset.label = "Action";
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

  // --- the range picker ----------------------------------------------------------------------------

  const PRESETS = { 1: "last hour", 24: "last 24 hours", 168: "last 7 days", 720: "last 30 days" };
  const MAX_RANGE_DAYS = 90;
  const isoMinute = (date) => date.toISOString().slice(0, 16).replace("T", " ");

  function rangeQuery(chosen) {
    if (chosen.hours) return "?hours=" + chosen.hours;
    return "?since=" + encodeURIComponent(chosen.since.toISOString()) +
      (chosen.until ? "&until=" + encodeURIComponent(chosen.until.toISOString()) : "");
  }

  // The incidents listed and shaded: those not over before the range began (the API's limit: 30 days).
  function incidentHours(chosen) {
    const since = chosen.hours ? Date.now() - chosen.hours * 3600000 : chosen.since.getTime();
    return Math.min(720, Math.max(24, Math.ceil((Date.now() - since) / 3600000)));
  }

  function rangeName(chosen) {
    if (chosen.hours) return PRESETS[chosen.hours] || `last ${chosen.hours} hours`;
    return `${isoMinute(chosen.since)} to ${chosen.until ? isoMinute(chosen.until) : "now"} UTC`;
  }

  function renderRange(answer, chosen, bands) {
    const name = rangeName(chosen);
    text("chart-range-title", `Events per ${answer.bucket}, ${name}`);
    text("outcomes-title", `Outcomes of finished journeys, ${name}`);
    document.getElementById("chart-range").dataset.bucket = answer.bucket;
    drawBars("chart-range", answer.series, { ...timeAxis(answer.bucket), bands: bands });
    drawShares(answer.totals);
  }

  const rangeForm = document.getElementById("range-form");
  const RANGE_FIELDS = { since: "range-from", until: "range-to" };

  function clearRangeErrors() {
    Object.values(RANGE_FIELDS).forEach((id) => document.getElementById(id).removeAttribute("aria-invalid"));
    Object.keys(RANGE_FIELDS).forEach((name) => text("range-error-" + name, ""));
    sayIn("range-message", "");
  }

  // The API's refusal of a range, by the fields it names, in the labels' words.
  function rangeRefused(error) {
    const fields = (error.data && error.data.fields) || {};
    const problems = Object.entries(fields)
      .filter(([name]) => RANGE_FIELDS[name] || name === "hours")
      .map(([name, messages]) => [RANGE_FIELDS[name] || "range-from", messages.join(" ")]);
    flagAll(rangeForm, "range-error-", problems, "range-message", "Range not shown");
  }

  // A datetime-local value read as UTC (the page speaks UTC throughout); null when empty.
  function utcInput(id) {
    const value = document.getElementById(id).value;
    if (!value) return null;
    const moment = new Date(value.length === 16 ? value + ":00Z" : value + "Z");
    return Number.isNaN(moment.getTime()) ? undefined : moment;
  }

  function checkedRange() {
    const problems = [];
    const since = utcInput("range-from");
    const until = utcInput("range-to");
    const now = new Date();
    if (!since) problems.push(["range-from", "From (UTC): give a date and time to start at."]);
    if (until === undefined) problems.push(["range-to", "To (UTC): give a date and time, or leave it empty for now."]);
    if (until && until > now) {
      problems.push(["range-to", `To (UTC) must not be after now (${isoMinute(now)} UTC).`]);
    }
    const end = until || now;
    if (since && until !== undefined && since >= end) {
      problems.push(["range-from", "From (UTC) must be before To (UTC)."]);
    } else if (since && until !== undefined && end - since > MAX_RANGE_DAYS * 86400000) {
      const days = ((end - since) / 86400000).toFixed(1);
      problems.push(["range-from", `The range is ${days} days long; it may be at most ${MAX_RANGE_DAYS} days.`]);
    }
    return { problems, chosen: { since, until } };
  }

  rangeForm.addEventListener("change", (event) => {
    if (event.target.name !== "range") return;
    const custom = event.target.value === "custom";
    document.getElementById("custom-range").hidden = !custom;
    clearRangeErrors();
    if (custom) {
      const from = document.getElementById("range-from");
      if (!from.value) from.value = new Date(Date.now() - 2 * 86400000).toISOString().slice(0, 16);
      from.focus();
      return;
    }
    range = { hours: Number(event.target.value) };
    refresh("range", { afterChange: true });
  });

  rangeForm.addEventListener("submit", (event) => {
    event.preventDefault();
    clearRangeErrors();
    const { problems, chosen } = checkedRange();
    if (problems.length) {
      flagAll(rangeForm, "range-error-", problems, "range-message", "Range not shown");
      return;
    }
    range = chosen;
    refresh("range", { afterChange: true });
  });

  // --- forms: every error at once, each by its field, in the words of the field's label ----------

  // A label's words without the hint in brackets: "Error rate (0–1, empty: unchanged)" is "Error rate".
  function labelOf(input) {
    const label = document.querySelector(`label[for="${input.id}"]`);
    return label ? label.textContent.replace(/\s*\(.*$/s, "").trim() : input.name;
  }

  // The API's messages name fields as the API does (abandon_rate); the form says them as its labels.
  function inLabels(message, form) {
    let said = message;
    form.querySelectorAll("input[name]:not([type=radio]), select[name]").forEach((input) => {
      const apiName = input.dataset.apiName || input.name;
      // Only the API's identifiers (error_rate, or a name the input gives): plain words such as
      // "template" read well as they are.
      if (!apiName.includes("_") && !input.dataset.apiName) return;
      said = said.replace(new RegExp(`\\b${apiName}\\b`, "g"), labelOf(input));
    });
    return said;
  }

  // Flag every [input id, message] of `problems` by its field (the slot is `prefix` + the slot
  // name the input gives, else its name), and sum them up in the form's message.
  function flagAll(form, prefix, problems, messageId, refused) {
    const names = [];
    problems.forEach(([id, message]) => {
      const input = document.getElementById(id);
      const slot = document.getElementById(prefix + (input.dataset.slot || input.name));
      const said = inLabels(message, form);
      if (slot) slot.textContent = slot.textContent ? `${slot.textContent} ${said}` : said;
      input.setAttribute("aria-invalid", "true");
      if (!names.includes(labelOf(input))) names.push(labelOf(input));
    });
    const list = names.length > 1 ? names.slice(0, -1).join(", ") + " and " + names[names.length - 1] : names[0];
    sayIn(messageId, `${refused}: check ${list}.`, true);
  }

  function sayIn(id, message, isError) {
    const element = document.getElementById(id);
    element.textContent = message;
    element.className = "message" + (isError ? " message-error" : "");
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

  // The state a control sets is shown from its answer at once, not at the next refresh: paused
  // from the toggle's answer; resumed as /status then says (running, stalled, starting ...).
  document.getElementById("toggle").addEventListener("click", async () => {
    const enabled = !(current ? current.settings.enabled : true);
    try {
      const answer = await api("/toggle", { enabled: enabled });
      renderSettings(answer.settings);
      say(enabled ? "Generation resumed." : "Generation paused.");
      if (!answer.settings.enabled) {
        showBadge("paused", "generation is paused", ++statusTickets);
      } else {
        const ticket = ++statusTickets;
        renderStatus(await api("/status"), ticket);
      }
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

  const settingsForm = document.getElementById("settings-form");
  settingsForm.addEventListener("submit", async (event) => {
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
      renderSettings(saved.settings);
      say(["Settings saved.", ...((saved && saved.warnings) || [])].join(" "));
    } catch (error) {
      const fields = Object.entries((error.data && error.data.fields) || {})
        .filter(([name]) => document.getElementById(name));
      if (fields.length) {
        const problems = fields.map(([name, messages]) => [name, messages.join(" ")]);
        flagAll(settingsForm, "error-", problems, "control-message", "Settings not saved");
      } else {
        say(error.message, true);
      }
    }
    refresh("settings", { afterChange: true });
  });

  function sayIncident(message, isError) {
    const element = document.getElementById("incident-message");
    element.textContent = message;
    element.className = "message" + (isError ? " message-error" : "");
  }

  const incidentForm = document.getElementById("incident-form");

  // [input id, message] for each field the page can check itself: whole numbers and ranges from the
  // inputs' min and max, a label that is not blank.
  function localIncidentProblems(value) {
    const problems = [];
    if (value("label") === "") problems.push(["incident-label", "Label must not be empty."]);
    const whole = [["in", "a whole number of minutes, 0 or more"], ["minutes", null]];
    whole.forEach(([name, rule]) => {
      const input = document.getElementById("incident-" + name);
      const given = value(name);
      const number = Number(given);
      const low = Number(input.min), high = input.max === "" ? Infinity : Number(input.max);
      if (given === "" && name === "in") return; // empty: the next minute
      if (given === "" || !Number.isInteger(number) || number < low || number > high) {
        problems.push([input.id, `${labelOf(input)} must be ${rule || `a whole number from ${low} to ${high}`}.`]);
      }
    });
    ["error_rate", "abandon_rate", "sessions_multiplier"].forEach((name) => {
      const input = document.getElementById("incident-" + name);
      const given = value(name);
      if (given === "") return; // unchanged
      const number = Number(given);
      if (!Number.isFinite(number) || number < Number(input.min) || number > Number(input.max)) {
        problems.push([input.id, `${labelOf(input)} must be a number from ${input.min} to ${input.max}.`]);
      }
    });
    return problems;
  }
  incidentForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = incidentForm.querySelector("button[type=submit]");
    if (submit.disabled) return; // one request at a time: a double click schedules once
    incidentForm.querySelectorAll(".error").forEach((slot) => (slot.textContent = ""));
    incidentForm.querySelectorAll("input, select").forEach((input) => input.removeAttribute("aria-invalid"));
    const value = (id) => document.getElementById("incident-" + id).value.trim();
    // What the page can tell before asking, every field at once: the start is needed to send at
    // all, and the numbers' ranges are the inputs' own. The API checks the rest (and these again).
    const problems = localIncidentProblems(value);
    if (problems.length) {
      flagAll(incidentForm, "incident-error-", problems, "incident-message", "Nothing scheduled");
      return;
    }
    const inMinutes = value("in") === "" ? 0 : Number(value("in"));
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
      const problems = Object.entries((error.data && error.data.fields) || {})
        .map(([name, messages]) => ["incident-" + (name === "starts_at" ? "in" : name), messages.join(" ")])
        .filter(([id]) => document.getElementById(id));
      if (problems.length) {
        flagAll(incidentForm, "incident-error-", problems, "incident-message", "Nothing scheduled");
      } else {
        sayIncident(error.message, true);
      }
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

  ["chart-hour", "chart-range", "chart-dau", "chart-days-active", "chart-retention"].forEach((id) =>
    resizer.observe(document.getElementById(id)),
  );
  document.querySelectorAll(".table-wrap").forEach((wrap) => resizer.observe(wrap));

  document.getElementById("refresh-now").addEventListener("click", () => refresh("button"));
  // Coming back to the tab or the window shows current numbers at once, not at the next tick.
  window.addEventListener("focus", () => refresh("focus"));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh("visible");
  });

  refresh("load");
})();
