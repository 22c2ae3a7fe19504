// Live counts: poll the count JSON (ETag revalidation keeps unchanged polls tiny) and animate.
// A campaign page polls one campaign-wide counts.json for all its demands; a petition page
// polls its own count.json. Pages work without this script; it only keeps numbers fresh.
(function () {
  "use strict";
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  var format = new Intl.NumberFormat(document.documentElement.lang || undefined);

  function Counter(box) {
    this.box = box;
    this.valueEl = box.querySelector("[data-count]");
    this.bar = box.querySelector("[data-progress]");
    this.current = parseInt((this.valueEl.textContent || "0").replace(/[^0-9]/g, ""), 10) || 0;
    box.setAttribute("aria-live", "polite");
  }

  Counter.prototype.update = function (data) {
    if (!data || typeof data.signature_count !== "number") return;
    var next = data.signature_count, el = this.valueEl, box = this.box;
    if (next !== this.current) {
      var from = this.current;
      this.current = next;
      if (reduceMotion) {
        el.textContent = format.format(next);
      } else {
        // Screen readers wait for aria-busy to clear, so they read only the final number.
        box.setAttribute("aria-busy", "true");
        el.classList.add("bump");
        var start = null, duration = 800;
        var step = function (ts) {
          if (start === null) start = ts;
          var t = Math.min(1, (ts - start) / duration);
          var eased = 1 - Math.pow(1 - t, 3);
          el.textContent = format.format(Math.round(from + (next - from) * eased));
          if (t < 1) {
            window.requestAnimationFrame(step);
          } else {
            box.setAttribute("aria-busy", "false");
            window.setTimeout(function () { el.classList.remove("bump"); }, 400);
          }
        };
        window.requestAnimationFrame(step);
      }
    }
    if (this.bar) {
      this.bar.max = Math.max(1, data.goal || 1);
      this.bar.value = Math.min(next, this.bar.max);
    }
  };

  function poll(url, seconds, onData) {
    function tick() {
      if (document.hidden) { schedule(); return; }
      fetch(url, { cache: "no-cache", credentials: "omit", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) onData(data); })
        .catch(function () { /* offline for a moment: try again next time */ })
        .then(schedule);
    }
    function schedule() { window.setTimeout(tick, Math.max(2, seconds) * 1000); }
    schedule();
  }

  var handled = [];
  document.querySelectorAll("[data-counts-url]").forEach(function (group) {
    var bySlug = {};
    group.querySelectorAll("[data-count-url]").forEach(function (box) {
      bySlug[box.getAttribute("data-slug")] = new Counter(box);
      handled.push(box);
    });
    poll(group.getAttribute("data-counts-url"), parseInt(group.getAttribute("data-poll"), 10) || 5,
      function (data) {
        (data.demands || []).forEach(function (d) { if (bySlug[d.slug]) bySlug[d.slug].update(d); });
      });
  });
  document.querySelectorAll("[data-count-url]").forEach(function (box) {
    if (handled.indexOf(box) !== -1) return;
    var counter = new Counter(box);
    poll(box.getAttribute("data-count-url"), parseInt(box.getAttribute("data-poll"), 10) || 5,
      function (data) { counter.update(data); });
  });
})();
