// The dashboard's shared script: the API key, calls to the JSON API, the create-and-run form,
// a notice left for the next page.
"use strict";

const Dashboard = (() => {
  /** The address of one of this service's paths (`/api/pipelines`), under the prefix a proxy
   * serves it at (UVICORN_ROOT_PATH: the page says it in `<body data-root>`), or at the root. */
  function url(path) {
    return (document.body.dataset.root || "") + path;
  }

  /** Keep the key in the browser's session cookie, or forget it (an empty key). The server sets
   * the cookie HttpOnly: no script reads it, not this one, nor a page of another port of this
   * host. Reads and this page's own writes carry it; the answer is the fetch's. */
  function saveKey(key) {
    const options = key
      ? {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ key }),
        }
      : { method: "DELETE" };
    return fetch(url("/dashboard/key"), { ...options, credentials: "same-origin" });
  }

  /** fetch() against the JSON API: the saved key goes with it, in its cookie. */
  function api(path, options = {}) {
    return fetch(url(path), { ...options, credentials: "same-origin" });
  }

  /** The message of an error response: the API's `message`, else its `detail`. */
  async function errorText(response) {
    try {
      const body = await response.json();
      if (typeof body.message === "string") return body.message;
      if (typeof body.detail === "string") return body.detail;
    } catch (_) {
      /* not JSON */
    }
    return `${response.status} ${response.statusText}`;
  }

  // the API's 401 for a key it does not know: on these pages, that is the key saved in the cookie
  const NOT_VALID = "the API key is not valid";
  const KEY_REFUSED =
    "the API key saved for this session was refused: enter a valid one under 'API key'";

  /** A refused write's message as this page says it: a wrong saved key is named as such. */
  function keyRefused(response, text) {
    return response.status === 401 && text.startsWith(NOT_VALID) ? KEY_REFUSED : text;
  }

  // a write waits on Prefect (a trigger took 2 min 14 s when it hung): long enough for that,
  // then the reader is told, not left with a button that never comes back
  const WRITE_TIMEOUT_MS = 150000;

  /** Open the API key panel and put the keyboard there (after a 401). */
  function askForKey() {
    const panel = document.getElementById("api-key-panel");
    if (panel) {
      panel.open = true;
      document.getElementById("api-key").focus();
    }
  }

  /** Run `swap` (which replaces elements of `region`) without losing the keyboard focus: the
   * focused link or button is found again in the new elements, by its id, data-key or href. */
  function keepingFocus(region, swap) {
    const focused = document.activeElement;
    const inside = focused && focused !== document.body && region.contains(focused);
    const selector = !inside
      ? null
      : focused.id
        ? `#${CSS.escape(focused.id)}`
        : focused.dataset.key
          ? `[data-key="${CSS.escape(focused.dataset.key)}"]`
          : focused.getAttribute("href")
            ? `[href="${CSS.escape(focused.getAttribute("href"))}"]`
            : null;
    swap();
    if (selector && !region.contains(document.activeElement)) {
      const again = region.querySelector(selector);
      if (again) again.focus();
    }
  }

  /** A fresh Idempotency-Key: random, from crypto.getRandomValues (randomUUID needs HTTPS). */
  function newKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  // A notice for the next page this tab opens (the pipeline page deletes, then opens the list):
  // kept in sessionStorage, shown once, under that page's heading.
  const NOTICE = "dashboard-notice";

  function leaveNotice(text) {
    try {
      sessionStorage.setItem(NOTICE, text);
    } catch (_) {
      /* storage off: the next page goes without it */
    }
  }

  function showNotice() {
    let text = null;
    try {
      text = sessionStorage.getItem(NOTICE);
      sessionStorage.removeItem(NOTICE);
    } catch (_) {
      /* storage off */
    }
    const heading = document.querySelector("main h1");
    if (!text || !heading) return;
    const notice = document.createElement("p");
    notice.id = "page-notice";
    notice.className = "notice";
    notice.setAttribute("role", "status");
    notice.tabIndex = -1; // focused, so that a screen reader reads it first; not a tab stop
    notice.textContent = text;
    heading.after(notice);
    notice.focus();
  }

  function setupKeyForm() {
    const form = document.getElementById("api-key-form");
    if (!form) return;
    const input = document.getElementById("api-key");
    const status = document.getElementById("api-key-status");

    async function keep(key, done, reload) {
      try {
        const response = await saveKey(key);
        if (!response.ok) {
          // a 422 names the field, and the reader knows which: "key: not one of …"
          status.textContent = `Not saved: ${(await errorText(response)).replace(/^key: /, "")}`;
          return;
        }
      } catch (error) {
        status.textContent = `Not saved: the service did not answer (${error.message}).`;
        return;
      }
      status.textContent = done;
      if (reload) location.reload();
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const key = input.value.trim();
      input.value = "";
      const reload = document.body.dataset.reloadOnKey !== undefined; // the key-needed page
      keep(key, key ? "Key saved for this session." : "No key saved.", reload);
    });
    document.getElementById("api-key-forget").addEventListener("click", () => {
      keep("", "Key forgotten.", false);
    });
  }

  // The create-and-run form: JSON for generated records, multipart when a file is chosen. The
  // API validates; its 422 details are shown next to their fields.
  function setupCreateForm() {
    const form = document.getElementById("create-form");
    if (!form) return;
    const fields = ["name", "record_count", "file", "format"];
    const formError = document.getElementById("form-error");
    const formStatus = document.getElementById("form-status");
    const submit = document.getElementById("create-submit");
    // disabled in the page: without JavaScript the form would send a GET, the name in the URL
    document.getElementById("create-fields").disabled = false;
    // one key per filling of the form: a second submit of the same (a double click, Enter
    // while the page changes) gets the same pipeline, not a second one; an edit is a new request
    let key = newKey();
    form.addEventListener("input", () => {
      key = newKey();
    });
    // Back to this page from the pipeline's: the browser may restore it as it was left, the button
    // disabled for the page that was loading. It is a new filling of the form now.
    window.addEventListener("pageshow", (event) => {
      if (!event.persisted) return;
      key = newKey();
      submit.disabled = false;
      formStatus.textContent = "";
    });

    function clearErrors() {
      formError.textContent = "";
      for (const name of fields) {
        document.getElementById(`${name}-error`).textContent = "";
        document.getElementById(name).removeAttribute("aria-invalid");
      }
    }

    function showFieldErrors(detail) {
      let first = null;
      const unplaced = [];
      for (const problem of detail) {
        const loc = problem.loc || [];
        const field = loc[0] === "body" ? loc[1] : loc[0];
        const message = String(problem.msg).replace(/^Value error, /, "");
        const slot = fields.includes(field) ? document.getElementById(`${field}-error`) : null;
        if (!slot) {
          unplaced.push(`${field || "body"}: ${message}`);
          continue;
        }
        slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
        document.getElementById(field).setAttribute("aria-invalid", "true");
        first = first || document.getElementById(field);
      }
      formError.textContent = unplaced.length
        ? unplaced.join("; ")
        : "The pipeline was not created: see the message by each field above.";
      if (first) first.focus();
    }

    function request() {
      const file = document.getElementById("file").files[0];
      const name = document.getElementById("name").value;
      if (file) {
        const body = new FormData();
        body.set("name", name);
        body.set("trigger", "true");
        const format = document.getElementById("format").value;
        if (format) body.set("format", format);
        body.set("file", file);
        return api("/api/pipelines", {
          method: "POST",
          body,
          headers: { "Idempotency-Key": key },
          signal: AbortSignal.timeout(WRITE_TIMEOUT_MS),
        });
      }
      const record_count = document.getElementById("record_count").value;
      return api("/api/pipelines", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": key },
        body: JSON.stringify({ name, record_count, trigger: true }),
        signal: AbortSignal.timeout(WRITE_TIMEOUT_MS),
      });
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (submit.disabled) return; // Enter while the last submit is under way
      clearErrors();
      const count = document.getElementById("record_count");
      const file = document.getElementById("file").files[0];
      if (!file && (count.validity.badInput || !count.value.trim())) {
        // empty, or what the browser cannot read as a number (1,000 in some): it would send ""
        showFieldErrors([
          { loc: ["body", "record_count"], msg: "enter a whole number, like 1000 (digits only)" },
        ]);
        return;
      }
      submit.disabled = true;
      formStatus.textContent = "Creating the pipeline and starting its run…";
      let leaving = false;
      try {
        const response = await request();
        if (response.ok) {
          const pipeline = await response.json();
          leaving = true; // the button stays disabled until the pipeline's page replaces this one
          formStatus.textContent = "Created: opening its page…";
          location.assign(url(`/pipelines/${pipeline.id}`));
          return;
        }
        if (response.status === 422) {
          const body = await response.json();
          showFieldErrors(body.detail || []);
        } else if (response.status === 413) {
          showFieldErrors([{ loc: ["body", "file"], msg: await errorText(response) }]);
        } else {
          formError.textContent = keyRefused(response, await errorText(response));
          if (response.status === 401) askForKey();
        }
      } catch (error) {
        formError.textContent =
          error.name === "TimeoutError"
            ? `No answer in ${WRITE_TIMEOUT_MS / 1000} s; the pipeline may still be created: ` +
              "it then appears in the list below. Submitting the form again unchanged makes no " +
              "second one."
            : `The API did not answer (${error.message}); is it running?`;
      } finally {
        if (!leaving) {
          submit.disabled = false;
          formStatus.textContent = "";
        }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    setupKeyForm();
    setupCreateForm();
    showNotice();
  });

  return { url, api, errorText, keyRefused, askForKey, keepingFocus, leaveNotice, WRITE_TIMEOUT_MS };
})();
