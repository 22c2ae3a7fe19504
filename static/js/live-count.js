// Live counts: poll count.json (ETag revalidation keeps unchanged polls tiny) and animate.
// Pages work without this script; it only keeps the numbers fresh.
(function () {
  "use strict";
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  var format = new Intl.NumberFormat(document.documentElement.lang || undefined);

  function animate(el, from, to) {
    if (reduceMotion || from === to) { el.textContent = format.format(to); return; }
    var start = null, duration = 800;
    function step(ts) {
      if (start === null) start = ts;
      var t = Math.min(1, (ts - start) / duration);
      var eased = 1 - Math.pow(1 - t, 3);
      el.textContent = format.format(Math.round(from + (to - from) * eased));
      if (t < 1) window.requestAnimationFrame(step);
    }
    el.classList.add("bump");
    window.setTimeout(function () { el.classList.remove("bump"); }, 1200);
    window.requestAnimationFrame(step);
  }

  function watch(box) {
    var url = box.getAttribute("data-count-url");
    var seconds = Math.max(2, parseInt(box.getAttribute("data-poll"), 10) || 5);
    var valueEl = box.querySelector("[data-count]");
    var bar = box.querySelector("[data-progress]");
    var current = parseInt((valueEl.textContent || "0").replace(/[^0-9]/g, ""), 10) || 0;
    box.setAttribute("aria-live", "polite");

    function poll() {
      if (document.hidden) { schedule(); return; }
      fetch(url, { cache: "no-cache", credentials: "omit", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (data && typeof data.signature_count === "number") {
            var next = data.signature_count;
            if (next !== current) { animate(valueEl, current, next); current = next; }
            if (bar) {
              bar.max = Math.max(1, data.goal || 1);
              bar.value = Math.min(next, bar.max);
            }
          }
        })
        .catch(function () { /* offline for a moment: try again next time */ })
        .then(schedule);
    }
    function schedule() { window.setTimeout(poll, seconds * 1000); }
    schedule();
  }

  document.querySelectorAll("[data-count-url]").forEach(watch);
})();
