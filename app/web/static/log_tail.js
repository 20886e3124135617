// The pipeline page's log tail: the latest run's last lines, polled on a loop of its own (Prefect
// may be slow, and the progress must not wait) while the run is pending or running, a few polls
// after it ends, and after a cancel until the service's line saying so is there. pipeline.js
// starts it and tells it when a run is in flight; not at all while the tab is hidden.
"use strict";

const LogTail = (() => {
  const POLL_MS = 1000;
  const ACTIVE = new Set(["pending", "running"]);
  const LOG_LINES = 200; // the logs endpoint's maximum
  const POLLS_AFTER_FINISH = 5; // Prefect receives a run's last log lines a little late
  // The API adds a cancelled run's `run N cancelled …` once Prefect has the lines it stands for,
  // or a minute after the cancel (app/pipeline/run_logs.py): waited for as `pipeline logs
  // --follow` waits, that minute and 3 s, from when the run is first seen cancelled.
  const CANCELLED_LINE_WAIT_MS = 63000;

  let page = null; // the pipeline page: its id, its latest run, whether it is being left
  let timer = null;
  let busy = false;
  let pollsLeft = POLLS_AFTER_FINISH;
  let cancelSeen = null; // { runId, at }: when the latest run was first seen cancelled

  const logLine = (line) =>
    `${line.timestamp.slice(11, 19)} ${line.level.padEnd(7)} ${line.message}`;

  /** A cancelled run's tail ends with the service's line; until it is there (`lines`: the last
   * answer's, null if none), the tail polls on, CANCELLED_LINE_WAIT_MS at most. */
  function awaitingCancelledLine(runId, lines) {
    if (lines && lines.some((line) => line.id === `run-${runId}-cancelled`)) return false;
    if (!cancelSeen || cancelSeen.runId !== runId) cancelSeen = { runId, at: Date.now() };
    return Date.now() - cancelSeen.at < CANCELLED_LINE_WAIT_MS;
  }

  /** Whether to poll again, the latest run as the page shows it now. */
  function again(lines) {
    const run = page.run();
    if (ACTIVE.has(run.status)) {
      pollsLeft = POLLS_AFTER_FINISH;
      return true;
    }
    if (run.status === "cancelled") return awaitingCancelledLine(run.id, lines);
    if (pollsLeft > 0) {
      pollsLeft -= 1;
      return true;
    }
    return false; // follow() starts it again with the next run
  }

  async function refreshLogs() {
    clearTimeout(timer);
    timer = null;
    busy = true;
    const tail = document.getElementById("log-tail");
    let text;
    let lines = null;
    let ok = true;
    if (!page.run().id) {
      text = "No run yet.";
    } else {
      try {
        const response = await Dashboard.api(
          `/api/pipelines/${page.pipelineId}/logs?limit=${LOG_LINES}&tail=true`,
          page.timed(),
        );
        if (response.ok) {
          lines = await response.json();
          text = lines.length ? lines.map(logLine).join("\n") : "No log lines yet.";
        } else {
          ok = false;
          text = `Logs unavailable: ${await Dashboard.errorText(response)}`;
        }
      } catch (error) {
        ok = false;
        text = `Logs unavailable: ${page.reason(error)}.`;
      }
    }
    busy = false;
    if (tail.textContent !== text) {
      const atBottom = tail.scrollTop + tail.clientHeight >= tail.scrollHeight - 4;
      tail.textContent = text;
      if (atBottom) tail.scrollTop = tail.scrollHeight;
    }
    const active = ACTIVE.has(page.run().status);
    if (!again(lines)) return;
    if (document.hidden || page.leaving()) return; // resume() starts it again
    timer = setTimeout(refreshLogs, (ok ? (active ? 1 : 2) : 5) * POLL_MS);
  }

  /** Start the tail of the page `of`: { pipelineId, run() → { id, status }, leaving(), timed(),
   * reason(error) }. */
  function start(of) {
    page = of;
    refreshLogs();
  }

  /** A run is in flight: the tail polls, and goes on a few polls after it ends. */
  function follow() {
    pollsLeft = POLLS_AFTER_FINISH;
    if (!document.hidden && !busy && timer === null) refreshLogs();
  }

  function stop() {
    clearTimeout(timer);
    timer = null;
  }

  /** The tab is shown again: at once, then as the run's status says. */
  function resume() {
    if (!busy) refreshLogs();
  }

  return { start, follow, stop, resume };
})();
