// The analysts' dashboard. A file of its own (the page's CSP allows no inline script); it talks to this origin's
// API only. The access token lives in the variable `session` below and nowhere else: not in localStorage,
// sessionStorage or a cookie. Text from the API is put into the page with textContent, never as HTML; the funnel
// plot's SVG is parsed as XML and imported, and carries no script.
"use strict";

(function () {
  var LABELS = {
    nl: {
      title: "Signaalregister", otherLanguage: "English", signOut: "Afmelden", signIn: "Aanmelden",
      signInHelp: "Meld u aan met de gegevens van een analistenclient.", clientId: "Client-id",
      clientSecret: "Clientgeheim", signInButton: "Aanmelden", periodType: "Periodesoort", week: "Week",
      month: "Maand", quarter: "Kwartaal", year: "Jaar", period: "Periode", groupBy: "Indeling",
      location: "Locatie", institution: "Instelling", postcode4: "Postcodegebied", municipality: "Gemeente",
      kind: "Soort signaal", exploitationType: "Soort uitbuiting", municipalityCode: "Gemeentecode",
      show: "Tonen", hotspots: "Brandpunten", unit: "Eenheid", incidents: "Signalen", residents: "Jongeren",
      placeMonths: "Plaatsmaanden", rate: "Per 10 plaatsmaanden", expected: "Verwacht", ratio: "Verhouding",
      band: "Trechter", trend: "Trend", funnelPlot: "Trechterdiagram", trends: "Trends per eenheid",
      reportingFunnel: "Van signaal tot melding", signals: "Signalen", step2: "Stap 2", step5: "Stap 5",
      reported: "Gemeld", reportedShare: "Aandeel gemeld", medianDays: "Mediaan dagen tot melding",
      all: "Alle", total: "Totaal", signInFailed: "Aanmelden mislukt: controleer client-id en geheim.",
      expired: "Uw sessie is verlopen. Meld u opnieuw aan.", signedOut: "U bent afgemeld.",
      notAnalyst: "Deze client is geen analist.", failed: "Opvragen mislukt",
      bands: { above998: "boven 99,8%", above95: "boven 95%", within: "binnen", below95: "onder 95%",
               below998: "onder 99,8%" },
      trendNames: { up: "stijgend", down: "dalend", flat: "gelijk", unknown: "onbekend" },
    },
    en: {
      title: "Signal register", otherLanguage: "Nederlands", signOut: "Sign out", signIn: "Sign in",
      signInHelp: "Sign in with the credentials of an analyst client.", clientId: "Client id",
      clientSecret: "Client secret", signInButton: "Sign in", periodType: "Period type", week: "Week",
      month: "Month", quarter: "Quarter", year: "Year", period: "Period", groupBy: "Group by",
      location: "Location", institution: "Institution", postcode4: "Postcode area", municipality: "Municipality",
      kind: "Kind of signal", exploitationType: "Exploitation type", municipalityCode: "Municipality code",
      show: "Show", hotspots: "Hotspots", unit: "Unit", incidents: "Signals", residents: "Young people",
      placeMonths: "Place-months", rate: "Per 10 place-months", expected: "Expected", ratio: "Ratio",
      band: "Funnel", trend: "Trend", funnelPlot: "Funnel plot", trends: "Trends per unit",
      reportingFunnel: "From signal to report", signals: "Signals", step2: "Step 2", step5: "Step 5",
      reported: "Reported", reportedShare: "Share reported", medianDays: "Median days to report",
      all: "All", total: "Total", signInFailed: "Sign-in failed: check the client id and secret.",
      expired: "Your session has expired. Please sign in again.", signedOut: "You are signed out.",
      notAnalyst: "This client is not an analyst.", failed: "Request failed",
      bands: { above998: "above 99.8%", above95: "above 95%", within: "within", below95: "below 95%",
               below998: "below 99.8%" },
      trendNames: { up: "up", down: "down", flat: "flat", unknown: "unknown" },
    },
  };
  var TREND_PERIODS = 8;
  var SVG_NS = "http://www.w3.org/2000/svg";

  var language = "nl";
  var session = null; // {token, expiry timer}: in memory only
  var taxonomy = null;
  var hotspotRows = [];
  var sortState = { key: null, descending: true };

  function $(id) { return document.getElementById(id); }
  function words() { return LABELS[language]; }

  // --- language ------------------------------------------------------------------------------------------------

  function applyLabels() {
    document.documentElement.lang = language;
    document.querySelectorAll("[data-label]").forEach(function (element) {
      var text = words()[element.dataset.label];
      if (typeof text === "string") { element.textContent = text; }
    });
    fillCodeList($("kind"), taxonomy ? taxonomy.kinds : []);
    fillCodeList($("exploitation-type"), taxonomy ? taxonomy.exploitationTypes : []);
  }

  function fillCodeList(select, terms) {
    var chosen = select.value;
    select.replaceChildren(option("", words().all));
    terms.forEach(function (term) {
      select.appendChild(option(term.code, language === "nl" ? term.labelNl : term.labelEn));
    });
    select.value = chosen;
  }

  function option(value, text) {
    var element = document.createElement("option");
    element.value = value;
    element.textContent = text;
    return element;
  }

  // --- periods (the API's fixed periods; ISO weeks) --------------------------------------------------------------

  function isoWeek(date) {
    var day = new Date(Date.UTC(date.getFullYear(), date.getMonth(), date.getDate()));
    var weekday = day.getUTCDay() || 7;
    day.setUTCDate(day.getUTCDate() + 4 - weekday);
    var yearStart = new Date(Date.UTC(day.getUTCFullYear(), 0, 1));
    return { year: day.getUTCFullYear(), week: Math.ceil(((day - yearStart) / 86400000 + 1) / 7) };
  }

  function pad(number) { return number < 10 ? "0" + number : String(number); }

  // The newest `count` periods of `type`, newest first, starting with the current one.
  function recentPeriods(type, count) {
    var now = new Date();
    var labels = [];
    for (var n = 0; n < count; n++) {
      if (type === "year") {
        labels.push(String(now.getFullYear() - n));
      } else if (type === "quarter") {
        var quarter = now.getFullYear() * 4 + Math.floor(now.getMonth() / 3) - n;
        labels.push(Math.floor(quarter / 4) + "-Q" + (quarter % 4 + 1));
      } else if (type === "month") {
        var month = now.getFullYear() * 12 + now.getMonth() - n;
        labels.push(Math.floor(month / 12) + "-" + pad(month % 12 + 1));
      } else {
        var day = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 7 * n);
        var week = isoWeek(day);
        labels.push(week.year + "-W" + pad(week.week));
      }
    }
    return labels;
  }

  function fillPeriods() {
    var type = $("period-type").value;
    var labels = recentPeriods(type, { week: 26, month: 24, quarter: 12, year: 6 }[type]);
    $("period").replaceChildren.apply($("period"), labels.map(function (label) { return option(label, label); }));
    $("period").value = labels[1]; // the last full period
  }

  // The `count` periods of the trend, ending with the chosen one (oldest first).
  function trendRange() {
    var type = $("period-type").value;
    var labels = recentPeriods(type, 80);
    var at = labels.indexOf($("period").value);
    var range = labels.slice(at, at + TREND_PERIODS).reverse();
    return { from: range[0], to: range[range.length - 1] };
  }

  // --- API ---------------------------------------------------------------------------------------------------------

  function SignedOut() {}
  function Stale() {}
  var generation = 0; // of refreshes: only the newest one draws

  // A request's answer is dropped when the session that asked has ended, or a newer refresh has begun since.
  function api(path, params, accept) {
    if (!session) { return Promise.reject(new SignedOut()); }
    var asked = { session: session, generation: generation };
    var query = new URLSearchParams(params).toString();
    return fetch(path + (query ? "?" + query : ""), {
      headers: { "Authorization": "Bearer " + session.token, "Accept": accept || "application/json",
                 "Accept-Language": language },
      credentials: "omit", cache: "no-store",
    }).then(function (response) {
      if (asked.session !== session || asked.generation !== generation) { throw new Stale(); }
      if (response.status === 401) {
        signOut(words().expired);
        throw new SignedOut();
      }
      if (!response.ok) {
        return response.json().then(function (problem) {
          var details = (problem.errors || []).map(function (e) { return e.pointer + ": " + e.detail; });
          throw new Error(words().failed + ": " + [problem.title].concat(details).join("; "));
        });
      }
      return accept === "image/svg+xml" ? response.text() : response.json();
    }).then(function (answer) {
      if (asked.session !== session || asked.generation !== generation) { throw new Stale(); }
      return answer;
    });
  }

  function filters() {
    var params = { groupBy: $("group-by").value };
    if ($("kind").value) { params.kind = $("kind").value; }
    if ($("exploitation-type").value) { params.exploitationType = $("exploitation-type").value; }
    if ($("municipality-code").value) { params.municipalityCode = $("municipality-code").value.trim(); }
    return params;
  }

  // --- sign-in and sign-out ----------------------------------------------------------------------------------------

  function signIn(event) {
    event.preventDefault();
    var body = new URLSearchParams({ grant_type: "client_credentials", client_id: $("client-id").value.trim(),
                                     client_secret: $("client-secret").value });
    $("client-secret").value = ""; // the secret is not kept, not even in the form
    fetch("/v1/oauth/token", { method: "POST", body: body, credentials: "omit", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error(words().signInFailed); }
        return response.json();
      })
      .then(function (grant) {
        if (!roleIsAnalyst(grant.access_token)) { throw new Error(words().notAnalyst); }
        // Sign out a little before the token expires, so no request is sent with an expired token.
        var timer = setTimeout(function () { signOut(words().expired); },
                               Math.max(grant.expires_in - 5, 1) * 1000);
        session = { token: grant.access_token, timer: timer };
        $("sign-in-message").textContent = "";
        show(true);
        return loadTaxonomy().then(refresh);
      })
      .catch(function (error) {
        if (!(error instanceof SignedOut || error instanceof Stale)) {
          $("sign-in-message").textContent = error.message;
        }
      });
  }

  // The role claim, read to say early that a client is not an analyst; the API checks it on every request.
  function roleIsAnalyst(token) {
    try {
      var payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(payload + "===".slice((payload.length + 3) % 4))).role === "analyst";
    } catch (error) {
      return false;
    }
  }

  function signOut(message) {
    if (session) { clearTimeout(session.timer); }
    session = null;
    hotspotRows = [];
    ["hotspots", "trends", "reporting-funnel"].forEach(function (id) {
      document.querySelector("#" + id + " tbody").replaceChildren();
    });
    $("funnel-plot").replaceChildren();
    $("message").textContent = "";
    $("sign-in-message").textContent = message || "";
    show(false);
  }

  function show(signedIn) {
    $("sign-in-view").hidden = signedIn;
    $("dashboard-view").hidden = !signedIn;
    $("sign-out").hidden = !signedIn;
  }

  // --- loading and drawing -----------------------------------------------------------------------------------------

  function loadTaxonomy() {
    if (taxonomy) { return Promise.resolve(); }
    return api("/v1/taxonomy", {}).then(function (document) {
      taxonomy = document;
      applyLabels();
    });
  }

  function refresh(event) {
    if (event) { event.preventDefault(); }
    if (!session) { return Promise.resolve(); }
    generation += 1;
    $("message").textContent = "";
    var period = $("period").value;
    var range = trendRange();
    var place = filters();
    var funnelPlace = Object.assign({}, place, {
      groupBy: place.groupBy === "institution" || place.groupBy === "municipality" ? place.groupBy : "institution" });
    return Promise.all([
      api("/v1/stats/hotspots", Object.assign({ period: period }, place)).then(drawHotspots),
      drawFunnelPlot(),
      api("/v1/stats/trends", Object.assign({ periodType: $("period-type").value, from: range.from, to: range.to },
                                            place)).then(drawTrends),
      api("/v1/stats/reporting-funnel", Object.assign({ period: period }, funnelPlace)).then(drawReportingFunnel),
    ]).catch(function (error) {
      if (!(error instanceof SignedOut || error instanceof Stale)) { $("message").textContent = error.message; }
    });
  }

  function drawFunnelPlot() {
    if (!session) { return Promise.resolve(); }
    return api("/v1/stats/hotspots/funnel-plot", Object.assign({ period: $("period").value }, filters()),
               "image/svg+xml").then(function (text) {
      var svg = new DOMParser().parseFromString(text, "image/svg+xml").documentElement;
      if (svg.namespaceURI !== SVG_NS || svg.getElementsByTagName("script").length) { return; }
      $("funnel-plot").replaceChildren(document.importNode(svg, true));
    });
  }

  function number(value, digits) {
    if (value === null || value === undefined) { return ""; }
    return value.toLocaleString(language === "nl" ? "nl-NL" : "en-GB",
                                { maximumFractionDigits: digits === undefined ? 2 : digits });
  }

  // A released count, or "<10" for a suppressed one (as the design shows it).
  function count(cell) {
    return cell.suppressed ? "<10" : number(cell.value, 0);
  }

  function cellElement(text, suppressed, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (suppressed) { td.className = "suppressed"; }
    if (className) { td.className = className; }
    return td;
  }

  function drawHotspots(body) {
    hotspotRows = body.units.map(function (row) {
      return {
        row: row, name: row.unit.name, incidents: row.incidents.value, residents: row.residents.value,
        places: row.places, rate: row.ratePer10Places, expected: row.expected, ratio: row.ratio,
        band: row.funnelBand, trend: row.trend,
      };
    });
    renderHotspots();
  }

  function renderHotspots() {
    var rows = hotspotRows.slice();
    if (sortState.key) {
      rows.sort(function (a, b) {
        var x = a[sortState.key], y = b[sortState.key];
        if (x === y) { return 0; }
        if (x === null || x === undefined) { return 1; } // suppressed and empty last, either way
        if (y === null || y === undefined) { return -1; }
        var order = typeof x === "string" ? x.localeCompare(y, language) : x - y;
        return sortState.descending ? -order : order;
      });
    }
    var body = document.querySelector("#hotspots tbody");
    body.replaceChildren.apply(body, rows.map(function (item) {
      var row = item.row;
      var tr = document.createElement("tr");
      tr.dataset.unitId = row.unit.id;
      if (row.funnelBand) { tr.className = row.funnelBand; }
      tr.append(cellElement(row.unit.name), cellElement(count(row.incidents), row.incidents.suppressed),
                cellElement(count(row.residents), row.residents.suppressed), cellElement(number(row.places, 1)),
                cellElement(number(row.ratePer10Places, 3)), cellElement(number(row.expected)),
                cellElement(number(row.ratio)),
                cellElement(row.funnelBand ? words().bands[row.funnelBand] : "", false,
                            row.funnelBand ? "band-" + row.funnelBand : null),
                cellElement(words().trendNames[row.trend] || ""));
      return tr;
    }));
    document.querySelectorAll("#hotspots th").forEach(function (th) {
      if (th.dataset.key === sortState.key) {
        th.setAttribute("aria-sort", sortState.descending ? "descending" : "ascending");
      } else {
        th.removeAttribute("aria-sort");
      }
    });
  }

  function sortBy(event) {
    var key = event.target.dataset.key;
    if (!key) { return; }
    sortState = { key: key, descending: sortState.key === key ? !sortState.descending : key !== "name" };
    renderHotspots();
  }

  function drawTrends(body) {
    var periods = body.total.map(function (point) { return point.period; });
    var head = document.querySelector("#trends thead tr");
    var unitHeader = document.createElement("th");
    unitHeader.dataset.label = "unit";
    unitHeader.textContent = words().unit;
    head.replaceChildren.apply(head, [unitHeader].concat(periods.map(function (period) {
      var th = document.createElement("th");
      th.textContent = period;
      return th;
    })));
    var rows = body.units.map(function (series) {
      return trendRow(series.unit.name, series.series);
    });
    rows.push(trendRow(words().total, body.total, "total"));
    var tbody = document.querySelector("#trends tbody");
    tbody.replaceChildren.apply(tbody, rows);
  }

  function trendRow(name, points, label) {
    var tr = document.createElement("tr");
    var first = cellElement(name);
    if (label) { first.dataset.label = label; }
    tr.appendChild(first);
    points.forEach(function (point) {
      tr.appendChild(cellElement(count(point.incidents), point.incidents.suppressed));
    });
    return tr;
  }

  function drawReportingFunnel(body) {
    var rows = body.units.map(function (row) { return funnelRow(row.unit.name, row); });
    rows.push(funnelRow(words().total, body.total, "total"));
    var tbody = document.querySelector("#reporting-funnel tbody");
    tbody.replaceChildren.apply(tbody, rows);
  }

  function funnelRow(name, stages, label) {
    var tr = document.createElement("tr");
    var first = cellElement(name);
    if (label) { first.dataset.label = label; }
    tr.append(first, cellElement(count(stages.signals), stages.signals.suppressed),
              cellElement(count(stages.reachedStep2), stages.reachedStep2.suppressed),
              cellElement(count(stages.reachedStep5), stages.reachedStep5.suppressed),
              cellElement(count(stages.reported), stages.reported.suppressed),
              cellElement(stages.reportedShare === null ? "" : number(stages.reportedShare * 100, 1) + "%"),
              cellElement(stages.medianDaysToReport === null ? "" : number(stages.medianDaysToReport, 0)));
    return tr;
  }

  function switchLanguage() {
    language = language === "nl" ? "en" : "nl";
    applyLabels();
    renderHotspots();
    if (session) { refresh(); } // the plot's labels and the number formats follow the language
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("sign-in").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", function () { signOut(words().signedOut); });
    $("language").addEventListener("click", switchLanguage);
    $("filters").addEventListener("submit", refresh);
    $("period-type").addEventListener("change", function () { fillPeriods(); refresh(); });
    $("period").addEventListener("change", function () { refresh(); });
    $("group-by").addEventListener("change", function () { refresh(); });
    document.querySelector("#hotspots thead").addEventListener("click", sortBy);
    fillPeriods();
    applyLabels();
    show(false);
  });
})();
