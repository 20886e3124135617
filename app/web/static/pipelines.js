// The pipelines page, live: polls its list region (server-rendered HTML, the same page and
// filter) and swaps in the rows that changed, without reloading the page. Every 2 s while a
// pipeline on the page is pending or running, every 10 s otherwise (new pipelines from other
// clients appear too); not at all while the tab is hidden.
"use strict";

(() => {
  const ACTIVE_MS = 2000;
  const IDLE_MS = 10000;
  const FETCH_TIMEOUT_MS = 10000;

  let list = null;
  let message = null;
  let timer = null;

  const rowKey = (row) => row.dataset.pipelineId;

  /** Replace the rows whose HTML changed; the whole region only when its shape changed. */
  function patch(fresh) {
    const oldRows = [...list.querySelectorAll("tr[data-pipeline-id]")];
    const newRows = [...fresh.querySelectorAll("tr[data-pipeline-id]")];
    const sameRows =
      oldRows.length === newRows.length &&
      oldRows.every((row, i) => rowKey(row) === rowKey(newRows[i]));
    Dashboard.keepingFocus(list, () => {
      if (!sameRows) {
        list.replaceChildren(...fresh.childNodes);
      } else {
        newRows.forEach((row, i) => {
          if (oldRows[i].outerHTML !== row.outerHTML) oldRows[i].replaceWith(row);
        });
        const pager = list.querySelector(".pager");
        const freshPager = fresh.querySelector(".pager");
        if (pager && freshPager && pager.outerHTML !== freshPager.outerHTML) {
          pager.replaceWith(freshPager);
        }
      }
    });
    list.dataset.active = fresh.dataset.active;
  }

  function schedule() {
    clearTimeout(timer);
    if (document.hidden) return; // visibilitychange starts it again
    timer = setTimeout(refresh, Number(list.dataset.active) > 0 ? ACTIVE_MS : IDLE_MS);
  }

  async function refresh() {
    try {
      const response = await fetch(Dashboard.url(`/pipelines-list?${list.dataset.query}`), {
        credentials: "same-origin",
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), // a hung request must not stop the loop
      });
      if (response.ok) {
        const template = document.createElement("template");
        template.innerHTML = await response.text();
        patch(template.content.getElementById("pipeline-list"));
        say("");
      } else {
        // e.g. a 401 once reads need a key: say so, rather than show a list that went stale
        const plain = (response.headers.get("content-type") || "").startsWith("text/plain");
        const first = !message.textContent;
        say(plain ? await response.text() : await Dashboard.errorText(response));
        if (response.status === 401 && first) Dashboard.askForKey();
      }
    } catch (error) {
      const why = error.name === "TimeoutError" ? `no answer in ${FETCH_TIMEOUT_MS / 1000} s` : error.message;
      say(`Lost contact with the API (${why}); trying again.`);
    }
    schedule();
  }

  function say(text) {
    if (message.textContent !== text) message.textContent = text;
  }

  document.addEventListener("DOMContentLoaded", () => {
    list = document.getElementById("pipeline-list");
    message = document.getElementById("list-message");
    if (!list) return;
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refresh();
      else clearTimeout(timer);
    });
    schedule();
  });
})();
