// The code view for a reviewing mentor: a line number picks the line to comment on, Shift+line number a range.
(function () {
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

  document.querySelectorAll("table.code a[data-line]").forEach((link) => {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      const line = Number(link.dataset.line);
      if (event.shiftKey && anchor !== null) {
        start.value = Math.min(anchor, line);
        end.value = Math.max(anchor, line);
      } else {
        anchor = line;
        start.value = line;
        end.value = line;
      }
      mark(Number(start.value), Number(end.value));
      const lastRow = document.getElementById("L" + end.value);
      let after = lastRow;
      while (after.nextElementSibling && after.nextElementSibling.classList.contains("line-comment")) {
        after = after.nextElementSibling;
      }
      after.after(holder);
      cell.appendChild(form);
      history.replaceState(null, "", "#L" + start.value);
      body.focus();
    });
  });
})();
