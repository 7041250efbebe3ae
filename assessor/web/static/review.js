// The review form: one click or a number key picks a level, the override reason only where a level differs from
// the automated one, the score as levels change (computed by the server's own scoring), Approve held back with
// the reason while something is missing, and a confirmation before approving.
(function () {
  const form = document.querySelector("form.criteria-form");
  const bar = document.getElementById("decision-bar");
  if (!form || !bar) return;
  const output = document.getElementById("live-score");
  const pickers = Array.from(form.querySelectorAll("fieldset.level-picker"));
  const approve = bar.querySelector('button[data-confirm]');
  const blocked = document.getElementById("approve-blocked");
  const integrityReason = document.getElementById("integrity_reason");

  function chosen(picker) {
    const checked = picker.querySelector("input[type=radio]:checked");
    return checked ? checked.value : "";
  }

  function toggleReason(picker) {
    const box = form.querySelector('.override-reason[data-for="' + picker.id + '"]');
    if (!box || picker.dataset.automated === undefined) return;
    const value = chosen(picker);
    const overriding = value !== "" && value !== picker.dataset.automated;
    const hasText = box.querySelector("textarea").value.trim() !== "";
    box.hidden = !overriding && !hasText && !box.querySelector(".error");
  }

  // Approve is offered only when the server would accept it; the reason says what is still missing.
  function refreshApprove() {
    if (!approve || !blocked) return;
    const missing = pickers.filter((picker) => picker.dataset.automated === undefined && chosen(picker) === "")
      .map((picker) => picker.dataset.title);
    const reasons = [];
    if (missing.length) reasons.push("set a level for " + missing.join(", "));
    if (form.hasAttribute("data-flag-pending") && integrityReason && integrityReason.value.trim() === "") {
      reasons.push("give your reason for going on despite the integrity flag");
    }
    approve.disabled = reasons.length > 0;
    blocked.textContent = reasons.length ? "To approve: " + reasons.join("; ") + "." : "";
  }

  let pending = null;
  function refreshScore() {
    const query = new URLSearchParams();
    pickers.forEach((picker) => query.set("level-" + picker.dataset.criterion, chosen(picker)));
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
    picker.addEventListener("change", () => { toggleReason(picker); refreshScore(); refreshApprove(); });
  });
  if (integrityReason) integrityReason.addEventListener("input", refreshApprove);
  refreshScore();
  refreshApprove();

  // A number key picks that level of the criterion being worked on (not while typing in a text box).
  form.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey || !/^[0-9]$/.test(event.key)) return;
    if (event.target.matches("textarea, input[type=text], input:not([type])")) return;
    const section = event.target.closest(".criterion-review");
    const picker = section && section.querySelector("fieldset.level-picker");
    const radio = picker && picker.querySelector('input[data-key="' + event.key + '"]');
    if (!radio) return;
    event.preventDefault();
    radio.checked = true;
    radio.focus();
    radio.dispatchEvent(new Event("change", { bubbles: true }));
  });

  // A comment used before goes into the criterion's box, after whatever is there.
  form.querySelectorAll("button[data-insert]").forEach((button) => {
    button.addEventListener("click", () => {
      const box = document.getElementById(button.dataset.insert);
      box.value = box.value.trim() ? box.value.trimEnd() + "\n" + button.dataset.text : button.dataset.text;
      box.focus();
    });
  });

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
