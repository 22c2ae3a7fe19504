// Kiosk: if someone walks away mid-form, clear what they typed after a quiet spell by
// loading a fresh, empty form (GET /kiosk, never cached), so the next person sees nothing;
// someone still there is warned first and keeps the form with one press.
// After a signature, the thank-you screen goes back to an empty form after a few seconds,
// unless the reader asks to stay (a time limit they can turn off).
(function () {
  "use strict";

  var thanks = document.querySelector("[data-return-seconds]");
  if (thanks) {
    var seconds = parseInt(thanks.getAttribute("data-return-seconds"), 10) || 6;
    var back = window.setTimeout(function () {
      window.location.assign(thanks.getAttribute("data-fresh-url"));  // as a refresh would
    }, seconds * 1000);
    var stay = thanks.querySelector("[data-stay]");
    var hint = thanks.querySelector("[data-return-hint]");
    if (stay && hint) {
      stay.hidden = false;
      stay.addEventListener("click", function () {
        window.clearTimeout(back);
        hint.textContent = hint.getAttribute("data-stayed");
        stay.hidden = true;
        var next = thanks.querySelector(".kiosk-next");
        if (next) next.focus();
      });
    }
    return;
  }

  var form = document.querySelector("form.kiosk-form");
  if (!form) return;
  var idleMs = (parseInt(form.getAttribute("data-idle-seconds"), 10) || 90) * 1000;
  // Warn before emptying the form: 20 s before (half the idle time if that is shorter).
  var warnMs = idleMs - Math.min(20000, idleMs / 2);
  var warning = document.querySelector("[data-idle-warning]");
  var timer = null;
  var warnTimer = null;
  var lastFocus = null;
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
  function warn() {
    if (!warning || !typedSomething()) return;
    lastFocus = document.activeElement;
    warning.hidden = false;
    var button = warning.querySelector("[data-idle-continue]");
    if (button) button.focus();  // announces the warning, and Enter keeps going
  }
  function arm(event) {
    if (warning && !warning.hidden) {
      if (event && event.type !== "click" && warning.contains(event.target)) return;  // its button's click
      warning.hidden = true;
      // After "I am still here", back to where they were; otherwise they are busy elsewhere.
      if (event && event.type === "click" && lastFocus && lastFocus !== document.body) lastFocus.focus();
    }
    window.clearTimeout(timer);
    window.clearTimeout(warnTimer);
    warnTimer = window.setTimeout(warn, warnMs);
    timer = window.setTimeout(reset, idleMs);
  }
  if (warning) {
    var keep = warning.querySelector("[data-idle-continue]");
    if (keep) keep.addEventListener("click", arm);
  }
  // Not "change": a text field sends it when the warning takes the focus (selects and boxes
  // send "input" too).
  ["input", "keydown", "pointerdown", "touchstart"].forEach(function (type) {
    document.addEventListener(type, arm, { passive: true });
  });
  arm();
})();
