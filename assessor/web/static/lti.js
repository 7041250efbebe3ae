// The deep-linking answer goes back to the course by itself; the button stays for browsers without scripts.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("deep-link-return");
  if (form) { form.submit(); }
});
