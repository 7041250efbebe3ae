// The review form: the override reason only where a level differs from the automated one, the score as levels
// change (computed by the server's own scoring), and a confirmation before approving.
(function () {
  const form = document.querySelector("form.criteria-form");
  const bar = document.getElementById("decision-bar");
  if (!form || !bar) return;
  const output = document.getElementById("live-score");
  const pickers = Array.from(form.querySelectorAll("select.level-picker"));

  function toggleReason(picker) {
    const box = form.querySelector('.override-reason[data-for="' + picker.id + '"]');
    if (!box || picker.dataset.automated === undefined) return;
    const overriding = picker.value !== "" && picker.value !== picker.dataset.automated;
    const hasText = box.querySelector("textarea").value.trim() !== "";
    box.hidden = !overriding && !hasText && !box.querySelector(".error");
  }

  let pending = null;
  function refreshScore() {
    const query = new URLSearchParams();
    pickers.forEach((picker) => query.set(picker.name, picker.value));
    if (pending) pending.abort();
    pending = new AbortController();
    fetch(bar.dataset.previewUrl + "?" + query.toString(), { signal: pending.signal, headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((score) => {
        if (!score) return;
        output.innerHTML = "";
        const strong = document.createElement("strong");
        strong.textContent = score.total.toFixed(1) + " of " + score.max + " (" + score.percent.toFixed(1) + "%)";
        const badge = document.createElement("span");
        badge.className = "badge outcome-" + score.outcome;
        badge.textContent = score.outcome;
        output.append(strong, " · ", badge);
      })
      .catch(() => {});
  }

  pickers.forEach((picker) => {
    toggleReason(picker);
    picker.addEventListener("change", () => { toggleReason(picker); refreshScore(); });
  });
  refreshScore();

  const approve = bar.querySelector('button[data-confirm]');
  const dialog = document.getElementById("approve-dialog");
  if (!approve || !dialog || typeof dialog.showModal !== "function") return;  // the server asks instead
  approve.addEventListener("click", (event) => {
    event.preventDefault();
    document.getElementById("dialog-score").textContent = output.textContent.trim();
    dialog.showModal();
    document.getElementById("approve-cancel").focus();
  });
  document.getElementById("approve-cancel").addEventListener("click", () => dialog.close());
  document.getElementById("approve-confirm").addEventListener("click", () => {
    for (const [name, value] of [["action", "approve"], ["confirmed", "yes"]]) {
      const input = document.createElement("input");
      input.type = "hidden"; input.name = name; input.value = value;
      form.appendChild(input);
    }
    dialog.close();
    form.submit();
  });
})();
