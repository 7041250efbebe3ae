// The submit form: the chosen capstone's rubric shown below the list as the learner picks one.
(function () {
  const select = document.getElementById("rubric");
  if (!select) return;
  const previews = Array.from(document.querySelectorAll(".rubric-preview"));
  const show = () => previews.forEach((preview) => { preview.hidden = preview.dataset.rubric !== select.value; });
  select.addEventListener("change", show);
  show();
})();
