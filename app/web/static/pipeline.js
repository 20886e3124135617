// The pipeline page, live: polls its progress region (server-rendered HTML) without reloading the
// page, and has log_tail.js follow the latest run's lines; not at all while the tab is hidden.
// Runs the buttons; Delete pipeline asks first.
"use strict";

(() => {
  const POLL_MS = 1000;
  const FETCH_TIMEOUT_MS = 10000; // the logs come from Prefect, which may not answer at all
  const ACTIVE = new Set(["pending", "running"]);
  const POLLS_AFTER_FINISH = 5; // polls 2 s apart after a run ends, then one each IDLE_MS
  const IDLE_MS = 10000; // no run in flight: a scheduled run, or one started elsewhere, shows

  let progress = null;
  let pipelineId = "";
  let timer = null;
  let pollsLeft = POLLS_AFTER_FINISH;
  let trouble = ""; // what the last failed poll said; cleared by the next poll that works
  let keyAsked = false; // once per streak of 401s: the key field must not keep taking the focus
  let leaving = false; // deleted: the list is loading, the polls have nothing left to say
  let polls = 0; // refreshes started: only the latest one's answer is shown

  const status = () => progress.dataset.status;
  // an older run can still be in flight when a later one has ended: Cancel run reaches it too
  const inFlight = () => ACTIVE.has(status()) || Number(progress.dataset.inFlight) > 0;
  const keys = (root) => [...root.querySelectorAll("[data-key]")].map((el) => el.dataset.key);

  /** Swap in the blocks of `fresh` that changed, so the live region announces only those. */
  function patch(fresh) {
    const newRun = fresh.dataset.runId !== progress.dataset.runId;
    const sameShape = !newRun && keys(fresh).join(" ") === keys(progress).join(" ");
    Dashboard.keepingFocus(progress, () => {
      if (!sameShape) {
        progress.replaceChildren(...fresh.childNodes);
      } else {
        for (const block of [...fresh.querySelectorAll("[data-key]")]) {
          const old = progress.querySelector(`[data-key="${block.dataset.key}"]`);
          if (old.outerHTML !== block.outerHTML) old.replaceWith(block);
        }
      }
    });
    if (newRun && progress.dataset.runId) showSchedule(); // a scheduled run: its next one
    progress.dataset.status = fresh.dataset.status;
    progress.dataset.inFlight = fresh.dataset.inFlight;
    progress.dataset.runId = fresh.dataset.runId;
  }

  function updateActions() {
    const shown = {
      "cancel-button": inFlight(),
      "retry-button": status() === "failed" || status() === "cancelled",
      "trigger-button": status() === "completed" || status() === "created",
      "delete-button": !inFlight(), // the API refuses while a run is in flight
    };
    const trigger = document.getElementById("trigger-button");
    const label = status() === "created" ? "Run" : "Run again"; // a first run is no "again"
    if (trigger.textContent !== label) trigger.textContent = label;
    const focused = document.activeElement;
    for (const [id, visible] of Object.entries(shown)) {
      document.getElementById(id).hidden = !visible;
    }
    if (focused && focused.hidden) {
      // the button pressed went away: the keyboard goes to what it did (the message, next to the
      // buttons), never to another button: a second Enter would cancel the run just started
      document.getElementById("action-message").focus();
    }
  }

  function say(text) {
    if (leaving) return;
    document.getElementById("action-message").textContent = text;
  }

  /** fetch() options that give up after FETCH_TIMEOUT_MS, so a hung request cannot stop a loop. */
  const timed = (options = {}) => ({ ...options, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  const reason = (error) =>
    error.name === "TimeoutError" ? `no answer in ${FETCH_TIMEOUT_MS / 1000} s` : error.message;

  function schedule(delay) {
    clearTimeout(timer);
    if (document.hidden || leaving) return; // visibilitychange starts it again
    timer = setTimeout(refresh, delay);
  }

  function failed(text) {
    trouble = text;
    say(text);
    schedule(5 * POLL_MS);
  }

  async function refresh() {
    clearTimeout(timer);
    const mine = ++polls; // a button's refresh can overtake a poll: the later one counts
    try {
      const response = await fetch(
        Dashboard.url(`/pipelines/${pipelineId}/progress`),
        timed({ credentials: "same-origin" }),
      );
      const body = await response.text();
      if (mine !== polls) return; // a later refresh is under way; it schedules the next
      if (response.status === 404) {
        // deleted elsewhere: nothing left to watch or to act on
        leaving = true;
        LogTail.stop();
        for (const button of document.querySelectorAll("#actions button")) button.hidden = true;
        document.getElementById("action-message").textContent =
          `${body}: it was deleted. The list of pipelines is at /.`;
        return;
      }
      if (!response.ok) {
        failed(body);
        if (response.status === 401 && !keyAsked) {
          keyAsked = true;
          Dashboard.askForKey();
        }
        return;
      }
      const template = document.createElement("template");
      template.innerHTML = body;
      patch(template.content.getElementById("progress"));
      updateActions();
    } catch (error) {
      if (mine !== polls) return;
      failed(`Lost contact with the API (${reason(error)}); trying again.`);
      return;
    }
    if (trouble) {
      // the action buttons' own messages stay
      if (document.getElementById("action-message").textContent === trouble) say("");
      trouble = "";
    }
    keyAsked = false;
    if (ACTIVE.has(status())) {
      pollsLeft = POLLS_AFTER_FINISH;
      LogTail.follow(); // it stops some time after a run ends; a new run starts it again
      schedule(POLL_MS);
    } else if (inFlight()) {
      schedule(2 * POLL_MS); // an older run: the buttons change when it ends
    } else if (pollsLeft > 0) {
      pollsLeft -= 1;
      schedule(2 * POLL_MS);
    } else {
      schedule(IDLE_MS); // never stop watching: Run again must not start a second run
    }
  }

  /** The schedule Prefect keeps for the pipeline, and when it next runs (times in UTC). */
  // as `pipeline schedules` says it: a cron, an interval, or a rule set in Prefect itself
  function scheduleWhen(s) {
    if (s.cron !== null) {
      const both = s.day_or === false ? ", on days matching both its day fields" : "";
      return `cron ${s.cron} (${s.timezone}${both})`;
    }
    if (s.interval_seconds === null) {
      const rule = String(s.rrule).replace(/\s+/g, " "); // Prefect adds a DTSTART line
      return `rrule ${rule} (${s.timezone}; set in Prefect)`;
    }
    return `every ${s.interval_seconds} s (${s.timezone})`;
  }

  async function showSchedule() {
    const cell = document.getElementById("schedule");
    let text;
    try {
      // the list, not …/schedule: a pipeline without one is no 404 in the console
      const response = await Dashboard.api("/api/schedules", timed());
      const s = response.ok
        ? (await response.json()).find((one) => String(one.pipeline_id) === pipelineId)
        : undefined;
      if (s) {
        const when = scheduleWhen(s);
        const next = !s.active
          ? "paused"
          : s.next_run_at
            ? `next run ${new Date(s.next_run_at).toISOString().slice(0, 19).replace("T", " ")} UTC`
            : "no run planned";
        text = `${when} · ${next}`;
      } else if (response.ok) {
        text = `none (pipeline schedule set ${pipelineId} --cron …, or PUT …/schedule)`;
      } else {
        text = `unknown: ${await Dashboard.errorText(response)}`;
      }
    } catch (error) {
      text = `unknown: ${reason(error)}`;
    }
    cell.textContent = text;
  }

  const DONE = { cancel: "Cancel requested.", retry: "Retry started.", trigger: "Run started." };
  const DOING = {
    cancel: "Cancelling…",
    retry: "Starting the retry…",
    trigger: "Starting the run…",
  };

  /** What a refused write means on this page; the API's words otherwise. */
  async function refusal(response) {
    const text = await Dashboard.errorText(response);
    if (response.status === 401) Dashboard.askForKey();
    return Dashboard.keyRefused(response, text);
  }

  const noAnswer = (error) =>
    error.name === "TimeoutError"
      ? `No answer in ${Dashboard.WRITE_TIMEOUT_MS / 1000} s; the request may still ` +
        "complete: this page shows it if it does."
      : `The API did not answer (${error.message}).`;

  /** Trigger, retry or cancel; the page goes on polling meanwhile, so it shows what happens. */
  async function act(button) {
    // aria-disabled, not disabled: a disabled button loses the keyboard focus
    if (button.getAttribute("aria-disabled") === "true") return;
    const action = button.dataset.action;
    button.setAttribute("aria-disabled", "true");
    say(DOING[action]);
    try {
      const response = await Dashboard.api(`/api/pipelines/${pipelineId}/${action}`, {
        method: "POST",
        signal: AbortSignal.timeout(Dashboard.WRITE_TIMEOUT_MS),
      });
      say(response.ok ? DONE[action] : await refusal(response));
    } catch (error) {
      say(noAnswer(error));
    }
    pollsLeft = POLLS_AFTER_FINISH;
    try {
      await refresh(); // the buttons the new status allows, before this one is pressable again
    } finally {
      button.removeAttribute("aria-disabled");
    }
  }

  /** Delete the pipeline once the reader confirms; then the list, which says it was deleted. */
  async function remove(button) {
    if (button.getAttribute("aria-disabled") === "true") return;
    const named = `“${button.dataset.pipelineName}” (#${pipelineId})`;
    const question =
      `Delete pipeline ${named}? Its runs, their files and its schedule are deleted with it; ` +
      "this cannot be undone.";
    if (!window.confirm(question)) return; // the focus stays on the button
    button.setAttribute("aria-disabled", "true");
    say("Deleting…");
    try {
      const response = await Dashboard.api(`/api/pipelines/${pipelineId}`, {
        method: "DELETE",
        signal: AbortSignal.timeout(Dashboard.WRITE_TIMEOUT_MS),
      });
      if (response.ok) {
        leaving = true; // and the button stays disabled until the list replaces this page
        LogTail.stop();
        Dashboard.leaveNotice(`Pipeline ${named} was deleted.`);
        location.assign(Dashboard.url("/"));
        return;
      }
      say(await refusal(response)); // 409: a run started meanwhile; 503: Prefect
    } catch (error) {
      say(noAnswer(error));
    }
    button.removeAttribute("aria-disabled");
    pollsLeft = POLLS_AFTER_FINISH;
    await refresh(); // after a 409, shows the run in flight (and Cancel run instead)
  }

  document.addEventListener("DOMContentLoaded", () => {
    progress = document.getElementById("progress");
    pipelineId = progress.dataset.pipelineId;
    for (const button of document.querySelectorAll("#actions button")) {
      const run = button.dataset.action === "delete" ? remove : act;
      button.addEventListener("click", () => run(button));
    }
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) {
        clearTimeout(timer);
        LogTail.stop();
      } else {
        refresh();
        LogTail.resume();
      }
    });
    // without JavaScript these say that they need it (the page is never live then)
    document.getElementById("log-tail").textContent = "Loading…";
    document.getElementById("schedule").textContent = "…";
    updateActions();
    refresh();
    LogTail.start({
      pipelineId,
      run: () => ({ id: progress.dataset.runId, status: status() }),
      leaving: () => leaving,
      timed,
      reason,
    });
    showSchedule();
  });
})();
