// Kiosk: if someone walks away mid-form, clear what they typed after a quiet spell by
// loading a fresh, empty form (GET /kiosk, never cached), so the next person sees nothing.
(function () {
  "use strict";
  var form = document.querySelector("form.kiosk-form");
  if (!form) return;
  var idleMs = (parseInt(form.getAttribute("data-idle-seconds"), 10) || 90) * 1000;
  var timer = null;
  function typedSomething() {
    return Array.prototype.some.call(form.elements, function (el) {
      if (el.type === "hidden" || el.type === "submit") return false;
      if (el.type === "checkbox") return el.checked !== el.defaultChecked;
      return el.value !== "" && el.value !== el.defaultValue;
    }) || form.querySelector("[aria-invalid=true]") !== null;
  }
  function reset() {
    if (typedSomething()) {
      form.reset();
      window.location.replace(form.getAttribute("data-fresh-url"));
    }
  }
  function arm() {
    window.clearTimeout(timer);
    timer = window.setTimeout(reset, idleMs);
  }
  ["input", "change", "keydown", "pointerdown", "touchstart"].forEach(function (type) {
    document.addEventListener(type, arm, { passive: true });
  });
  arm();
})();
