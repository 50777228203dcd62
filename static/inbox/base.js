// Shared by every page: selects marked data-autosubmit submit their form on change
// (the language switch), so pages need no inline script.
document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
  select.addEventListener("change", () => select.form.submit());
});
