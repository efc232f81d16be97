// talentwatch workbench: keyboard (j/k next/previous, o open, r/n relevant/not relevant, / search) and verdicts.
"use strict";
(function () {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const entries = Array.from(document.querySelectorAll(".entry"));
  let current = -1;

  function select(n) {
    if (!entries.length) return;
    if (current >= 0) entries[current].classList.remove("current");
    current = Math.max(0, Math.min(entries.length - 1, n));
    entries[current].classList.add("current");
    entries[current].scrollIntoView({ block: "nearest" });
  }

  async function judge(item, topic, relevant) {
    const response = await fetch(`/api/items/${item}/judgements`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
      body: JSON.stringify({ topic: topic, relevant: relevant }),
      credentials: "same-origin",
    });
    if (!response.ok) return;
    document.querySelectorAll(`.judge[data-item="${item}"][data-topic="${topic}"]`).forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.relevant === String(relevant)));
    });
  }

  document.querySelectorAll(".judge").forEach(function (b) {
    b.addEventListener("click", function () { judge(b.dataset.item, b.dataset.topic, b.dataset.relevant === "true"); });
  });

  function verdictKey(relevant) {
    const article = document.querySelector("article.item");
    if (article) {  // on an item's page: the first topic the item is tagged with, else the first topic
      const first = document.querySelector(".topic h2");
      const topic = first ? first.textContent.trim() : document.querySelector(".verdict").dataset.topic;
      judge(article.dataset.id, topic, relevant);
    } else if (current >= 0 && entries[current].dataset.id && entries[current].dataset.topics) {
      judge(entries[current].dataset.id, entries[current].dataset.topics.split(" ")[0], relevant);
    }
  }

  document.addEventListener("keydown", function (e) {
    if (e.target.matches("input, select, textarea") || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "j") select(current + 1);
    else if (e.key === "k") select(current - 1);
    else if (e.key === "o" && current >= 0) window.location.href = entries[current].dataset.href;
    else if (e.key === "r") verdictKey(true);
    else if (e.key === "n") verdictKey(false);
    else if (e.key === "/") { e.preventDefault(); document.getElementById("search").focus(); }
    else return;
  });
})();
