// The big screen: poll screen.json (ETag revalidation keeps unchanged polls tiny), animate the
// count, move the progress bars and slide newly listed signers in. The page shows the values
// of load time without this script (and reloads itself every 30 s then).
(function () {
  "use strict";
  var main = document.querySelector("[data-screen-url]");
  if (!main || !window.fetch) return;

  var url = main.getAttribute("data-screen-url");
  var seconds = Math.max(1, parseInt(main.getAttribute("data-poll"), 10) || 3);
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  var format = new Intl.NumberFormat(document.documentElement.lang || undefined);
  var LONG = 7; // more characters than this: a smaller font, so the number stays on screen

  var totalEl = main.querySelector("[data-total]");
  var numberBox = totalEl ? totalEl.parentNode : null;
  var current = parseDigits(totalEl);
  var recentList = main.querySelector("[data-recent]");
  var recentEmpty = main.querySelector("[data-recent-empty]");
  var shown = readRecent();

  function parseDigits(el) {
    return el ? parseInt((el.textContent || "0").replace(/[^0-9]/g, ""), 10) || 0 : 0;
  }

  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  }

  function setBar(bar, value, goal) {
    if (!bar) return;
    bar.max = Math.max(1, goal || 1);
    bar.value = Math.min(value, bar.max);
    bar.textContent = percent(value, goal) + "%";
  }

  function percent(value, goal) {
    return goal ? Math.floor(value * 100 / goal) : 0;
  }

  function showTotal(value) {
    var text = format.format(value);
    setText(totalEl, text);
    numberBox.classList.toggle("long", text.length > LONG);
  }

  function animateTotal(next) {
    var from = current;
    current = next;
    if (reduceMotion || !window.requestAnimationFrame) {
      showTotal(next);
      return;
    }
    // Screen readers wait for aria-busy to clear, so they read only the final number.
    numberBox.setAttribute("aria-busy", "true");
    numberBox.classList.remove("bump");
    void numberBox.offsetWidth; // restart the CSS animation
    numberBox.classList.add("bump");
    var start = null, duration = 900;
    function step(ts) {
      if (current !== next) return; // a newer value took over
      if (start === null) start = ts;
      var t = Math.min(1, (ts - start) / duration);
      var eased = 1 - Math.pow(1 - t, 3);
      showTotal(Math.round(from + (next - from) * eased));
      if (t < 1) {
        window.requestAnimationFrame(step);
      } else {
        numberBox.setAttribute("aria-busy", "false");
      }
    }
    window.requestAnimationFrame(step);
  }

  function flat(li) {
    return li.textContent.replace(/\s+/g, "");
  }

  function readRecent() {
    // The list as rendered: compared by text, so the first poll animates nothing.
    if (!recentList) return [];
    return Array.prototype.map.call(recentList.children, function (li) {
      return flat(li);
    });
  }

  function makeItem(signer) {
    var li = document.createElement("li");
    var name = document.createElement("span");
    name.className = "screen-name";
    name.textContent = signer.first_name;
    var where = document.createElement("span");
    where.className = "screen-where";
    if (signer.flag) {
      var flag = document.createElement("span");
      flag.className = "flag";
      flag.setAttribute("aria-hidden", "true");
      flag.textContent = signer.flag;
      where.appendChild(flag);
      where.appendChild(document.createTextNode(" "));
    }
    var country = document.createElement("span");
    country.className = "screen-country";
    country.textContent = signer.country_name || "";
    where.appendChild(country);
    li.appendChild(name);
    li.appendChild(where);
    return li;
  }

  // How many entries at the top of `next` are new: the rest is the old list moved down.
  function newAtTop(previous, next) {
    if (!previous.length) return next.length;
    for (var k = 0; k <= next.length; k++) {
      var same = true;
      for (var i = k; i < next.length && i - k < previous.length; i++) {
        if (next[i] !== previous[i - k]) { same = false; break; }
      }
      if (same) return k;
    }
    return next.length;
  }

  function updateRecent(recent) {
    if (!recentList || !Array.isArray(recent)) return;
    var items = recent.map(makeItem);
    var texts = items.map(flat);
    if (texts.join("\u0001") === shown.join("\u0001")) return;
    var fresh = newAtTop(shown, texts);
    recentList.textContent = "";
    items.forEach(function (li, i) {
      if (i < fresh && !reduceMotion) li.className = "arrive";
      recentList.appendChild(li);
    });
    shown = texts;
    if (recentEmpty) recentEmpty.hidden = recent.length > 0;
  }

  function update(data) {
    if (!data || typeof data.count !== "number") return;
    if (data.count !== current) animateTotal(data.count);
    setBar(main.querySelector(".screen-count > [data-progress]"), data.count, data.goal);
    setText(main.querySelector("[data-goal]"), format.format(data.goal || 0));
    setText(main.querySelector("[data-percent]"), String(percent(data.count, data.goal)));
    (data.demands || []).forEach(function (demand) {
      var slug = String(demand.slug);
      var row = main.querySelector('[data-slug="' + (window.CSS && CSS.escape ? CSS.escape(slug) : slug) + '"]');
      if (!row) return;
      setText(row.querySelector("[data-count]"), format.format(demand.count));
      setBar(row.querySelector("[data-progress]"), demand.count, demand.goal);
    });
    updateRecent(data.recent);
  }

  function tick() {
    if (document.hidden) { schedule(); return; }
    fetch(url, { cache: "no-cache", credentials: "omit", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) update(data); })
      .catch(function () { /* the venue's network dropped for a moment: try again */ })
      .then(schedule);
  }

  function schedule() { window.setTimeout(tick, seconds * 1000); }

  // Keep a projector from dimming, where the browser allows it (https only; optional).
  if (navigator.wakeLock && navigator.wakeLock.request) {
    var wake = function () {
      if (document.visibilityState === "visible") navigator.wakeLock.request("screen").catch(function () {});
    };
    document.addEventListener("visibilitychange", wake);
    wake();
  }

  schedule();
})();
