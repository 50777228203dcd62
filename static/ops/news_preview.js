// Keeps the news-card preview on the news template page in step with the form.
(function () {
  "use strict";
  function bind() {
    var card = document.getElementById("news-card");
    if (!card) return;
    ["title", "description", "url", "picurl"].forEach(function (name) {
      var input = document.getElementById("id_" + name);
      var target = card.querySelector('[data-field="' + name + '"]');
      if (!input || !target) return;
      var update = function () {
        var value = input.value.trim();
        if (name === "picurl") {
          var box = target.parentNode;
          if (/^https?:\/\//i.test(value)) {
            target.src = value;
            target.hidden = false;
            box.classList.remove("news-card-pic-empty");
          } else {
            target.removeAttribute("src");
            target.hidden = true;
            box.classList.add("news-card-pic-empty");
          }
        } else {
          target.textContent = value;
        }
      };
      input.addEventListener("input", update);
      update();
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", bind);
  } else {
    bind();
  }
})();
