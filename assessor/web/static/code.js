// The code view for a reviewing mentor: a line number picks the line to comment on, Shift+line number a range.
(function () {
  // The line numbers are one tab stop: the arrow keys move between them (Home and End to the first and last).
  const numbers = Array.from(document.querySelectorAll("table.code a[data-line]"));
  numbers.forEach((link, index) => {
    link.addEventListener("keydown", (event) => {
      const moves = { ArrowDown: index + 1, ArrowUp: index - 1, Home: 0, End: numbers.length - 1 };
      if (!(event.key in moves)) return;
      const target = numbers[Math.max(0, Math.min(numbers.length - 1, moves[event.key]))];
      event.preventDefault();
      link.tabIndex = -1;
      target.tabIndex = 0;
      target.focus();
    });
  });

  const form = document.getElementById("line-comment-form");
  if (!form) return;
  const start = form.querySelector("#start_line");
  const end = form.querySelector("#end_line");
  const body = form.querySelector("#body");
  const holder = document.createElement("tr");
  holder.className = "comment-form-row";
  const cell = document.createElement("td");
  cell.colSpan = 3;
  holder.appendChild(cell);
  let anchor = null;

  function mark(from, to) {
    document.querySelectorAll("table.code tr.selected").forEach((row) => row.classList.remove("selected"));
    for (let number = from; number <= to; number++) {
      const row = document.getElementById("L" + number);
      if (row) row.classList.add("selected");
    }
  }

  // The form goes under the last line of the range, where the mentor is looking.
  function place() {
    mark(Number(start.value), Number(end.value));
    let after = document.getElementById("L" + end.value);
    if (!after) return false;
    while (after.nextElementSibling && after.nextElementSibling.classList.contains("line-comment")) {
      after = after.nextElementSibling;
    }
    after.after(holder);
    cell.appendChild(form);
    history.replaceState(null, "", "#L" + start.value);
    return true;
  }

  // An error belongs to the comment it was about: a new line starts clean.
  function clearErrors() {
    form.querySelectorAll("p.error").forEach((message) => message.remove());
    form.querySelectorAll("[aria-invalid]").forEach((field) => {
      field.removeAttribute("aria-invalid");
      field.removeAttribute("aria-describedby");
    });
    form.querySelectorAll(".field.invalid").forEach((field) => field.classList.remove("invalid"));
  }

  document.querySelectorAll("table.code a[data-line]").forEach((link) => {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      const line = Number(link.dataset.line);
      if (event.shiftKey && anchor !== null) {
        start.value = Math.min(anchor, line);
        end.value = Math.max(anchor, line);
      } else {
        if (anchor !== line) clearErrors();
        anchor = line;
        start.value = line;
        end.value = line;
      }
      place();
      body.focus();
    });
  });

  // Sent back with an error: the form, its range and what was typed stay at the lines, the field in error focused.
  if (form.querySelector("p.error") && start.value && end.value && place()) {
    anchor = Number(start.value);
    const invalid = form.querySelector("[aria-invalid=true]") || body;
    invalid.focus();
    holder.scrollIntoView({ block: "center" });
  }
})();
