// The pipeline page, live: polls its progress region (server-rendered HTML) and the log tail
// while the latest run is pending or running, without reloading the page; runs the buttons.
"use strict";

(() => {
  const POLL_MS = 1000;
  const ACTIVE = new Set(["pending", "running"]);
  const LOG_LINES = 200; // the logs endpoint's maximum
  const POLLS_AFTER_FINISH = 5; // Prefect receives a run's last log lines a little late

  let progress = null;
  let pipelineId = "";
  let timer = null;
  let pollsLeft = POLLS_AFTER_FINISH;

  const status = () => progress.dataset.status;
  const keys = (root) => [...root.querySelectorAll("[data-key]")].map((el) => el.dataset.key);

  /** Swap in the blocks of `fresh` that changed, so the live region announces only those. */
  function patch(fresh) {
    const sameShape =
      fresh.dataset.runId === progress.dataset.runId &&
      keys(fresh).join(" ") === keys(progress).join(" ");
    if (!sameShape) {
      progress.replaceChildren(...fresh.childNodes);
    } else {
      for (const block of [...fresh.querySelectorAll("[data-key]")]) {
        const old = progress.querySelector(`[data-key="${block.dataset.key}"]`);
        if (old.outerHTML !== block.outerHTML) old.replaceWith(block);
      }
    }
    progress.dataset.status = fresh.dataset.status;
    progress.dataset.runId = fresh.dataset.runId;
  }

  function updateActions() {
    const shown = {
      "cancel-button": ACTIVE.has(status()),
      "retry-button": status() === "failed" || status() === "cancelled",
      "trigger-button": status() === "completed" || status() === "created",
    };
    const focused = document.activeElement;
    for (const [id, visible] of Object.entries(shown)) {
      document.getElementById(id).hidden = !visible;
    }
    if (focused && focused.hidden) {
      // the button pressed went away: keep the keyboard on the actions, not the page top
      const next = [...document.querySelectorAll("#actions button")].find((b) => !b.hidden);
      (next || document.getElementById("progress-title")).focus();
    }
  }

  function say(text) {
    document.getElementById("action-message").textContent = text;
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(refresh, delay);
  }

  async function refresh() {
    try {
      const response = await fetch(`/pipelines/${pipelineId}/progress`, {
        credentials: "same-origin",
      });
      if (!response.ok) {
        say(await response.text());
        if (response.status === 401) Dashboard.askForKey();
        schedule(5 * POLL_MS);
        return;
      }
      const template = document.createElement("template");
      template.innerHTML = await response.text();
      patch(template.content.getElementById("progress"));
      updateActions();
    } catch (error) {
      say(`Lost contact with the API (${error.message}); trying again.`);
      schedule(5 * POLL_MS);
      return;
    }
    await refreshLogs();
    if (ACTIVE.has(status())) {
      pollsLeft = POLLS_AFTER_FINISH;
      schedule(POLL_MS);
    } else if (pollsLeft > 0) {
      pollsLeft -= 1;
      schedule(2 * POLL_MS);
    }
  }

  const logLine = (line) =>
    `${line.timestamp.slice(11, 19)} ${line.level.padEnd(7)} ${line.message}`;

  async function refreshLogs() {
    const tail = document.getElementById("log-tail");
    let text;
    if (!progress.dataset.runId) {
      text = "No run yet.";
    } else {
      try {
        const response = await Dashboard.api(
          `/api/pipelines/${pipelineId}/logs?limit=${LOG_LINES}&tail=true`,
        );
        if (response.ok) {
          const lines = await response.json();
          text = lines.length ? lines.map(logLine).join("\n") : "No log lines yet.";
        } else {
          text = `Logs unavailable: ${await Dashboard.errorText(response)}`;
        }
      } catch (error) {
        text = `Logs unavailable: ${error.message}`;
      }
    }
    if (tail.textContent !== text) {
      const atBottom = tail.scrollTop + tail.clientHeight >= tail.scrollHeight - 4;
      tail.textContent = text;
      if (atBottom) tail.scrollTop = tail.scrollHeight;
    }
  }

  /** The schedule Prefect keeps for the pipeline, and when it next runs (times in UTC). */
  async function showSchedule() {
    const cell = document.getElementById("schedule");
    let text;
    try {
      // the list, not …/schedule: a pipeline without one is no 404 in the console
      const response = await Dashboard.api("/api/schedules");
      const s = response.ok
        ? (await response.json()).find((one) => String(one.pipeline_id) === pipelineId)
        : undefined;
      if (s) {
        const when = s.cron !== null ? `cron ${s.cron}` : `every ${s.interval_seconds} s`;
        const next = !s.active
          ? "paused"
          : s.next_run_at
            ? `next run ${new Date(s.next_run_at).toISOString().slice(0, 19).replace("T", " ")} UTC`
            : "no run planned";
        text = `${when} (${s.timezone}) · ${next}`;
      } else if (response.ok) {
        text = `none (pipeline schedule set ${pipelineId} --cron …, or PUT …/schedule)`;
      } else {
        text = `unknown: ${await Dashboard.errorText(response)}`;
      }
    } catch (error) {
      text = `unknown: ${error.message}`;
    }
    cell.textContent = text;
  }

  const DONE = { cancel: "Cancel requested.", retry: "Retry started.", trigger: "Run started." };

  async function act(button) {
    // aria-disabled, not disabled: a disabled button loses the keyboard focus
    if (button.getAttribute("aria-disabled") === "true") return;
    const action = button.dataset.action;
    clearTimeout(timer);
    button.setAttribute("aria-disabled", "true");
    say("");
    try {
      const response = await Dashboard.api(`/api/pipelines/${pipelineId}/${action}`, {
        method: "POST",
      });
      if (response.ok) {
        say(DONE[action]);
      } else {
        say(await Dashboard.errorText(response));
        if (response.status === 401) Dashboard.askForKey();
      }
    } catch (error) {
      say(`The API did not answer (${error.message}).`);
    } finally {
      button.removeAttribute("aria-disabled");
    }
    pollsLeft = POLLS_AFTER_FINISH;
    await refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    progress = document.getElementById("progress");
    pipelineId = progress.dataset.pipelineId;
    for (const button of document.querySelectorAll("#actions button")) {
      button.addEventListener("click", () => act(button));
    }
    updateActions();
    refresh();
    showSchedule();
  });
})();
