// Certificate pages: a busy state while an upload is checked (a PDF takes a few seconds), and a Copy button for
// the learner's verify link. Without JavaScript the form and the link work the same.
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("form[data-busy-text]"), function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) { button.disabled = true; button.textContent = form.dataset.busyText; }
      form.setAttribute("aria-busy", "true");
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var field = document.getElementById(button.dataset.copy);
      var done = function () {
        button.textContent = "Copied";
        // Said aloud too: the button's own text changing is not announced.
        var said = document.getElementById("copy-status");
        if (said) { said.textContent = "Copied the link to the clipboard"; }
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
      } else {
        field.select();
        document.execCommand("copy");
        done();
      }
    });
  });
})();
