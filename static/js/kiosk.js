// Kiosk: if someone walks away mid-form, clear what they typed after a quiet spell by
// loading a fresh, empty form (GET /kiosk, never cached), so the next person sees nothing.
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
