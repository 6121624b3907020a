// Leads Manager board behaviour: drag and drop, drawer, modal, bulk selection, pipeline settings.
// All user content reaches the page through server-rendered, autoescaped templates or textContent.
(function () {
  "use strict";

  function csrfToken() {
    const headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    return headers["X-CSRFToken"] || "";
  }

  function toast(message) {
    const box = document.getElementById("toast");
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
    clearTimeout(box._timer);
    box._timer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  function adjustCount(stageId, delta) {
    const badge = document.querySelector(`[data-stage-count="${stageId}"]`);
    if (badge) badge.textContent = String(parseInt(badge.textContent, 10) + delta);
  }

  // Moves are saved at once; a card stays where it was dropped only after the server said yes.
  async function saveMove(evt) {
    if (evt.from === evt.to) return;
    const card = evt.item;
    const putBack = () => {
      evt.from.insertBefore(card, evt.from.children[evt.oldIndex] || null);
      card.classList.remove("saving");
    };
    card.classList.add("saving");
    let response;
    try {
      response = await fetch(card.dataset.moveUrl, {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken(), "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ stage: evt.to.dataset.stageId }),
        credentials: "same-origin",
      });
    } catch (error) {
      putBack();
      toast("The move was not saved: the server could not be reached.");
      return;
    }
    if (!response.ok) {
      putBack();
      let message = "The move was not saved.";
      try { message = (await response.json()).error || message; } catch (e) { /* not JSON: keep the generic message */ }
      toast(message);
      return;
    }
    card.classList.remove("saving");
    adjustCount(evt.from.dataset.stageId, -1);
    adjustCount(evt.to.dataset.stageId, +1);
  }

  function initBoard(root) {
    const board = root.id === "board-columns" ? root : root.querySelector && root.querySelector("#board-columns");
    if (!board || typeof Sortable === "undefined") return;
    const canMove = board.dataset.canMove === "true";
    board.querySelectorAll("ul.cards").forEach((list) => {
      if (list._sortable) return;
      list._sortable = Sortable.create(list, {
        group: "board",
        sort: false,
        animation: 120,
        disabled: !canMove,
        draggable: ".lead-card",
        filter: "input,button.tag-remove",
        preventOnFilter: false,
        onEnd: saveMove,
      });
    });
    updateBulkBar();
  }

  function updateBulkBar() {
    const bar = document.getElementById("bulk-bar");
    if (!bar) return;
    const selected = document.querySelectorAll(".card-select:checked").length;
    bar.hidden = selected === 0;
    document.getElementById("bulk-count").textContent = `${selected} selected`;
  }

  function showBulkInputs() {
    const bar = document.getElementById("bulk-bar");
    if (!bar) return;
    const action = bar.querySelector("#bulk-action").value;
    bar.querySelectorAll("[data-for]").forEach((el) => { el.hidden = el.dataset.for !== action; el.disabled = el.dataset.for !== action; });
  }

  document.addEventListener("change", (event) => {
    if (event.target.classList.contains("card-select")) updateBulkBar();
    if (event.target.id === "bulk-action") showBulkInputs();
    if (event.target.name === "remove") {
      const row = event.target.closest(".stage-row");
      row.querySelector(".move-to").hidden = !event.target.checked;
      row.classList.toggle("removing", event.target.checked);
    }
  });

  document.addEventListener("click", (event) => {
    const target = event.target;
    if (target.closest("[data-close-drawer]")) {
      const drawer = document.getElementById("drawer");
      drawer.hidden = true;
      drawer.innerHTML = "";
    }
    if (target.closest("[data-close-modal]")) document.getElementById("modal").close();
    const copyButton = target.closest("[data-copy]");
    if (copyButton) {
      const input = document.querySelector(copyButton.dataset.copy);
      input.select();
      const done = () => { copyButton.textContent = "Copied"; };
      if (navigator.clipboard) navigator.clipboard.writeText(input.value).then(done, () => document.execCommand("copy") && done());
      else if (document.execCommand("copy")) done();
    }
    if (target.id === "bulk-clear") {
      document.querySelectorAll(".card-select:checked").forEach((box) => { box.checked = false; });
      updateBulkBar();
    }
    const row = target.closest(".stage-row");
    if (row && target.classList.contains("move-up") && row.previousElementSibling) row.parentNode.insertBefore(row, row.previousElementSibling);
    if (row && target.classList.contains("move-down") && row.nextElementSibling) row.parentNode.insertBefore(row.nextElementSibling, row);
    if (row && (target.classList.contains("move-up") || target.classList.contains("move-down"))) target.focus();
    if (row && target.classList.contains("drop-new")) row.remove();
    if (target.id === "add-stage") {
      const template = document.getElementById("new-stage-row");
      const newRow = template.content.firstElementChild.cloneNode(true);
      document.getElementById("stage-rows").appendChild(newRow);
      newRow.querySelector("input[name=stage_name]").focus();
    }
  });

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      const drawer = document.getElementById("drawer");
      if (drawer && !drawer.hidden) { drawer.hidden = true; drawer.innerHTML = ""; }
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    showBulkInputs();
    document.body.addEventListener("htmx:afterSwap", (event) => {
      if (event.detail.target.id === "drawer") event.detail.target.hidden = false;
    });
    document.body.addEventListener("htmx:responseError", (event) => {
      toast(`That did not work (${event.detail.xhr.status}). Nothing was changed.`);
    });
    document.body.addEventListener("htmx:sendError", () => toast("The server could not be reached. Nothing was changed."));
    document.body.addEventListener("leadsChanged", () => {
      document.querySelectorAll(".card-select:checked").forEach((box) => { box.checked = false; });
    });
    htmx.onLoad(initBoard);
    initBoard(document.body);
  });
})();
