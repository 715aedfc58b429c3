// The assistant's chat page. Plain JavaScript, no build step, no third-party requests.
// Every string from the model or the API is put on the page as text (textContent / Text nodes),
// never parsed as HTML: an answer holding <script> or <img src=...> shows those characters, nothing runs.
"use strict";

(() => {
  const STORE = { token: "assistant.token", conversation: "assistant.conversation", persona: "assistant.persona" };
  const MAX_NOTIFICATIONS = 50;

  const $ = (id) => document.getElementById(id);
  const ui = {
    model: $("model"),
    messages: $("messages"),
    emptyChat: $("empty-chat"),
    composer: $("composer"),
    message: $("message"),
    send: $("send"),
    stop: $("stop"),
    newConversation: $("new-conversation"),
    persona: $("persona"),
    setToken: $("set-token"),
    toasts: $("toasts"),
    notificationsSection: $("notifications-section"),
    notifications: $("notifications"),
    notificationsEmpty: $("notifications-empty"),
    notificationsState: $("notifications-state"),
    skillsSection: $("skills-section"),
    skills: $("skills"),
    skillsStatus: $("skills-status"),
    remindersSection: $("reminders-section"),
    reminders: $("reminders"),
    remindersStatus: $("reminders-status"),
    schedulesSection: $("schedules-section"),
    schedules: $("schedules"),
    schedulesStatus: $("schedules-status"),
    refreshSchedules: $("refresh-schedules"),
    tokenDialog: $("token-dialog"),
    tokenForm: $("token-form"),
    tokenReason: $("token-reason"),
    tokenInput: $("token-input"),
    tokenCancel: $("token-cancel"),
  };

  const state = {
    token: storageGet(STORE.token),
    conversationId: storageGet(STORE.conversation),
    persona: storageGet(STORE.persona), // "" = the daemon's default
    abort: null, // AbortController of the answer being streamed
    tokenRequest: null, // the pending "ask for the token" promise, shared by concurrent 401s
    events: null, // EventSource of the notification stream
    retryMs: 2000,
    seenNotifications: new Set(),
    scheduled: new Map(), // skill name -> its real schedules (descriptions), from /api/schedules
  };

  // ---------- small helpers ----------

  function storageGet(key) {
    try {
      return window.localStorage.getItem(key) || "";
    } catch {
      return "";
    }
  }

  function storageSet(key, value) {
    try {
      if (value) window.localStorage.setItem(key, value);
      else window.localStorage.removeItem(key);
    } catch {
      // storage may be disabled (private mode); the page still works for this visit
    }
  }

  /** Make an element. `text` is set with textContent; attributes are set one by one (never as HTML). */
  function el(tag, { cls, text, attrs } = {}, ...children) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function asText(value) {
    if (value === undefined || value === null) return "";
    if (typeof value === "string") return value;
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    try {
      return JSON.stringify(value);
    } catch {
      return String(value);
    }
  }

  function formatTime(value) {
    if (value === undefined || value === null || value === "") return "";
    let date;
    if (typeof value === "number") date = new Date(value > 1e12 ? value : value * 1000);
    else date = new Date(String(value));
    if (Number.isNaN(date.getTime())) return asText(value);
    return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  /** A list out of whatever an endpoint returned: a list, or an object holding one, or a name -> item map. */
  function asList(body, keys) {
    if (Array.isArray(body)) return body;
    if (body && typeof body === "object") {
      for (const key of keys) if (Array.isArray(body[key])) return body[key];
      return Object.entries(body)
        .filter(([, v]) => v && typeof v === "object" && !Array.isArray(v))
        .map(([name, v]) => ({ name, ...v }));
    }
    return [];
  }

  function firstText(obj, keys) {
    for (const key of keys) {
      const v = obj && obj[key];
      if (v !== undefined && v !== null && v !== "") return asText(v);
    }
    return "";
  }

  // ---------- the API token ----------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** Ask the user for the token (one dialog for however many requests got a 401 at once). */
  function askToken(reason) {
    if (state.tokenRequest) return state.tokenRequest;
    state.tokenRequest = new Promise((resolve, reject) => {
      ui.tokenReason.textContent = reason;
      ui.tokenInput.value = state.token;
      const finish = (ok) => {
        ui.tokenForm.removeEventListener("submit", onSubmit);
        ui.tokenCancel.removeEventListener("click", onCancel);
        ui.tokenDialog.removeEventListener("cancel", onCancel);
        if (ui.tokenDialog.open) ui.tokenDialog.close();
        state.tokenRequest = null;
        if (ok) resolve(state.token);
        else reject(new ApiError(401, "the API token is needed for this"));
      };
      const onSubmit = (event) => {
        event.preventDefault();
        setToken(ui.tokenInput.value.trim());
        finish(true);
      };
      const onCancel = (event) => {
        event.preventDefault();
        finish(false);
      };
      ui.tokenForm.addEventListener("submit", onSubmit);
      ui.tokenCancel.addEventListener("click", onCancel);
      ui.tokenDialog.addEventListener("cancel", onCancel);
      ui.tokenDialog.showModal();
      ui.tokenInput.focus();
    });
    return state.tokenRequest;
  }

  function setToken(token) {
    const changed = token !== state.token;
    state.token = token;
    storageSet(STORE.token, token);
    if (changed) {
      startNotifications();
      loadModel(); // a token-protected daemon names its model only to a caller with the token
    }
  }

  /** fetch() with the token. A 401 asks for the token and tries again; other statuses are returned. */
  async function api(path, { method = "GET", body, signal } = {}) {
    for (;;) {
      const headers = { Accept: "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (state.token) headers.Authorization = "Bearer " + state.token;
      const response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: "no-store",
        credentials: "same-origin",
      });
      if (response.status !== 401) return response;
      const why = state.token
        ? "The daemon refused the saved API token. Enter the token from its config (server.api_token)."
        : "This daemon asks for its API token (server.api_token).";
      await askToken(why);
    }
  }

  async function errorMessage(response) {
    const retry = response.headers.get("Retry-After");
    const suffix = retry ? ` (try again in ${retry} s)` : "";
    let text = "";
    try {
      text = await response.text();
      const body = JSON.parse(text);
      const message = (body && body.error && body.error.message) || (body && body.detail);
      if (message) return asText(message) + suffix;
    } catch {
      // not JSON: fall through to the raw text
    }
    return (text.trim().slice(0, 300) || `HTTP ${response.status}`) + suffix;
  }

  /** Does this daemon run without the part behind this response? It answers 503 with the error code
   * "part_disabled" when the part is turned off in its config (404 from a daemon that lacks it). Only the
   * body of a 503 is read (from a copy), so this is safe on a stream. */
  async function partIsOff(response) {
    if (response.status === 404) return true;
    if (response.status !== 503) return false;
    try {
      const body = await response.clone().json();
      return Boolean(body && body.error && body.error.code === "part_disabled");
    } catch {
      return false;
    }
  }

  async function getJSON(path) {
    const response = await api(path);
    if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
    return response.json();
  }

  // ---------- server-sent events over fetch (for the POST chat stream) ----------

  function parseEventBlock(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue; // comments are keep-alive pings
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    return data.length ? { event, data: data.join("\n") } : null;
  }

  async function* readEvents(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      buffer = buffer.replace(/\r\n|\r(?=[^\n]|$)/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = parseEventBlock(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event) yield event;
      }
      if (done) break;
    }
    const last = parseEventBlock(buffer);
    if (last) yield last;
  }

  // ---------- the conversation ----------

  function setConversation(id) {
    state.conversationId = id || "";
    storageSet(STORE.conversation, state.conversationId);
  }

  function updateEmptyChat() {
    ui.emptyChat.hidden = ui.messages.childElementCount > 0;
  }

  function nearBottom() {
    const m = ui.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 48;
  }

  function scrollToEnd() {
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  // ---------- Markdown, rendered safely ----------
  // A small renderer of our own (no vendored library: the subset a chat answer uses fits in ~150 lines,
  // and every node is built with createElement/textContent, so nothing the model writes is parsed as HTML).
  // Links: only absolute http(s) targets become links (rel=noopener noreferrer), shown with their host;
  // anything else (javascript:, data:, relative) stays text. Images are never fetched: a link to them at most.

  /** An absolute http(s) URL, normalised, or null. */
  function safeHref(raw) {
    try {
      const url = new URL(String(raw).trim());
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch {
      return null;
    }
  }

  function mdLink(label, target, parent) {
    const href = safeHref(target);
    if (!href) {
      parent.append(document.createTextNode(target ? `${label} (${target})` : label));
      return;
    }
    const a = el("a", { cls: "md-link", text: label, attrs: { href, rel: "noopener noreferrer", target: "_blank", title: href } });
    parent.append(a);
    if (label.trim() !== target.trim() && label.trim() !== href) {
      parent.append(el("span", { cls: "link-target", text: ` (${new URL(href).host})` }));
    }
  }

  const INLINE = new RegExp([
    "(?<code>`+)(?<codeText>[\\s\\S]*?[^`])\\k<code>(?!`)",
    "!\\[(?<imgAlt>[^\\]]*)\\]\\((?<imgSrc>[^)\\s]*)(?:\\s+\"[^\"]*\")?\\)",
    "\\[(?<linkText>[^\\]]+)\\]\\((?<linkHref>[^)\\s]*)(?:\\s+\"[^\"]*\")?\\)",
    "<(?<auto>https?://[^>\\s]+)>",
    "(?<bare>\\bhttps?://[^\\s<>\"'`]*[^\\s<>\"'`.,;:!?)\\]])",
    "(?<![\\w*])\\*\\*(?=\\S)(?<bold1>[\\s\\S]+?)(?<=\\S)\\*\\*",
    "(?<!\\w)__(?=\\S)(?<bold2>[\\s\\S]+?)(?<=\\S)__(?!\\w)",
    "(?<![\\w*])\\*(?=[^\\s*])(?<em1>[\\s\\S]+?)(?<=\\S)\\*(?!\\*)",
    "(?<!\\w)_(?=\\S)(?<em2>[\\s\\S]+?)(?<=\\S)_(?!\\w)",
    "~~(?=\\S)(?<strike>[\\s\\S]+?)(?<=\\S)~~",
  ].join("|"), "g");

  /** Inline Markdown of `text` appended to `parent` as DOM nodes (text nodes for everything else). */
  function mdInline(text, parent) {
    let at = 0;
    INLINE.lastIndex = 0;
    const matches = [...text.matchAll(INLINE)];
    for (const m of matches) {
      if (m.index < at) continue;
      if (m.index > at) parent.append(document.createTextNode(text.slice(at, m.index)));
      const g = m.groups;
      if (g.code !== undefined) parent.append(el("code", { text: g.codeText.replace(/^ (.*) $/s, "$1") }));
      else if (g.imgSrc !== undefined) mdLink(`image: ${g.imgAlt || "untitled"}`, g.imgSrc, parent);
      else if (g.linkHref !== undefined) mdLink(g.linkText, g.linkHref, parent);
      else if (g.auto !== undefined) mdLink(g.auto, g.auto, parent);
      else if (g.bare !== undefined) mdLink(g.bare, g.bare, parent);
      else {
        const inner = g.bold1 ?? g.bold2 ?? g.em1 ?? g.em2 ?? g.strike;
        const tag = g.bold1 !== undefined || g.bold2 !== undefined ? "strong" : g.strike !== undefined ? "del" : "em";
        const node = el(tag);
        mdInline(inner, node);
        parent.append(node);
      }
      at = m.index + m[0].length;
    }
    if (at < text.length) parent.append(document.createTextNode(text.slice(at)));
  }

  function mdLines(lines, parent) {
    lines.forEach((line, i) => {
      if (i) parent.append(el("br"));
      mdInline(line, parent);
    });
  }

  const TABLE_RULE = /^\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;
  const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;

  function tableCells(line) {
    let s = line.trim();
    if (s.startsWith("|")) s = s.slice(1);
    if (s.endsWith("|") && !s.endsWith("\\|")) s = s.slice(0, -1);
    return s.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, "|"));
  }

  /** Markdown `source` as a DocumentFragment: headings, paragraphs, lists, quotes, code blocks, tables, rules. */
  function renderMarkdown(source) {
    const out = document.createDocumentFragment();
    const lines = String(source).replace(/\r\n?/g, "\n").split("\n");
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      const fence = line.match(/^\s*(`{3,}|~{3,})\s*([\w+#.-]*)/);
      if (fence) {
        const body = [];
        i += 1;
        while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
        i += 1;
        const code = el("code", { text: body.join("\n") });
        if (fence[2]) code.dataset.lang = fence[2];
        out.append(el("pre", { cls: "md-code" }, code));
        continue;
      }
      if (!line.trim()) { i += 1; continue; }
      const heading = line.match(/^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/);
      if (heading) {
        const node = el(`h${Math.min(6, heading[1].length + 2)}`, { cls: "md-heading" });
        mdInline(heading[2], node);
        out.append(node);
        i += 1;
        continue;
      }
      if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) { out.append(el("hr")); i += 1; continue; }
      if (/^\s{0,3}>/.test(line)) {
        const quoted = [];
        while (i < lines.length && /^\s{0,3}>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s{0,3}>\s?/, ""));
        out.append(el("blockquote", {}, renderMarkdown(quoted.join("\n"))));
        continue;
      }
      if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]) && lines[i + 1].includes("-")) {
        const head = tableCells(line);
        const tr = el("tr");
        for (const cell of head) { const th = el("th"); mdInline(cell, th); tr.append(th); }
        const tbody = el("tbody");
        i += 2;
        while (i < lines.length && lines[i].includes("|") && lines[i].trim()) {
          const row = el("tr");
          const cells = tableCells(lines[i++]);
          for (let c = 0; c < head.length; c += 1) { const td = el("td"); mdInline(cells[c] || "", td); row.append(td); }
          tbody.append(row);
        }
        out.append(el("div", { cls: "md-table" }, el("table", {}, el("thead", {}, tr), tbody)));
        continue;
      }
      const first = line.match(LIST_ITEM);
      if (first) {
        const ordered = /\d/.test(first[2]);
        const list = el(ordered ? "ol" : "ul");
        if (ordered && parseInt(first[2], 10) !== 1) list.setAttribute("start", String(parseInt(first[2], 10)));
        const indent = first[1].length;
        while (i < lines.length) {
          const m = lines[i].match(LIST_ITEM);
          if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
          const item = [m[3]];
          i += 1;
          // continuation lines and nested lists: indented deeper than the marker
          while (i < lines.length && lines[i].trim() && (lines[i].match(/^(\s*)/)[1].length > indent) ) item.push(lines[i++].slice(indent + 2));
          const li = el("li");
          const nested = item.findIndex((l, n) => n > 0 && LIST_ITEM.test(l));
          mdLines(nested > 0 ? item.slice(0, nested) : item, li);
          if (nested > 0) li.append(renderMarkdown(item.slice(nested).join("\n")));
          list.append(li);
        }
        out.append(list);
        continue;
      }
      const para = [];
      while (i < lines.length && lines[i].trim() && !/^\s*(`{3,}|~{3,})/.test(lines[i]) &&
             !/^\s{0,3}(#{1,6}\s|>)/.test(lines[i]) && !(para.length && LIST_ITEM.test(lines[i])) &&
             !/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(lines[i])) para.push(lines[i++].trim());
      const p = el("p");
      mdLines(para, p);
      out.append(p);
    }
    return out;
  }

  // Inline SVG icons: they draw without an emoji font.
  const SVG_NS = "http://www.w3.org/2000/svg";
  const ICONS = {
    up: "M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L13.2 1 6.6 7.6C6.2 8 6 8.5 6 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z",
    down: "M22 3h-4v12h4V3zM2 14a2 2 0 0 0 2 2h6.3l-1 4.6v.3c0 .4.2.8.4 1.1l1.1 1 6.6-6.6c.4-.4.6-.9.6-1.4V5a2 2 0 0 0-2-2H7c-.8 0-1.5.5-1.8 1.2l-3 7.1c-.1.2-.2.5-.2.7v2z",
    bell: "M12 22a2 2 0 0 0 2-2h-4a2 2 0 0 0 2 2zm6-6V11c0-3.1-1.6-5.6-4.5-6.3V4a1.5 1.5 0 0 0-3 0v.7C7.6 5.4 6 7.9 6 11v5l-2 2v1h16v-1l-2-2z",
  };

  function icon(name) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", `icon icon-${name}`);
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", ICONS[name]);
    path.setAttribute("fill", "currentColor");
    svg.append(path);
    return svg;
  }

  /** Add a message to the log; returns its parts so a streamed answer can grow. */
  function addMessage(role, content, createdAt) {
    const label = role === "user" ? "You" : role === "assistant" ? "Assistant" : asText(role);
    const text = document.createTextNode(asText(content));
    // The user's words are shown as typed; an answer's Markdown is rendered (from `text`, kept off the page).
    const markdown = role === "assistant";
    const body = el("div", { cls: `message-text${markdown ? " markdown" : ""}` }, markdown ? renderMarkdown(text.data) : text);
    const meta = el("p", { cls: "message-meta" }, el("span", { cls: "role", text: label }));
    if (createdAt) meta.append(el("time", { text: formatTime(createdAt), attrs: { datetime: asText(createdAt) } }));
    const item = el("li", { cls: `message ${role === "user" ? "from-user" : "from-assistant"}` }, meta, body);
    item.dataset.role = asText(role);
    const stick = nearBottom();
    ui.messages.append(item);
    updateEmptyChat();
    if (stick || role === "user") scrollToEnd();
    let pending = false;
    /** Render the answer's Markdown again after `text` grew (at most once a frame while streaming). */
    const render = (now) => {
      if (!markdown) return;
      if (now) { body.replaceChildren(renderMarkdown(text.data)); return; }
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => { pending = false; body.replaceChildren(renderMarkdown(text.data)); });
    };
    return { item, body, text, meta, render };
  }

  function addNote(message, cls) {
    return el("p", { cls: `note ${cls || ""}`, text: message, attrs: { role: cls === "error" ? "alert" : "status" } });
  }

  function renderRecalled(target, recalled) {
    if (!Array.isArray(recalled)) return;
    if (recalled.length === 0) {
      target.item.append(el("p", { cls: "recalled-none", text: "No memories recalled for this answer." }));
      return;
    }
    const list = el("ol", { cls: "recalled-list" });
    for (const memory of recalled) {
      const m = memory && typeof memory === "object" ? memory : { text: memory };
      const bits = [];
      if (m.source) bits.push(asText(m.source));
      if (m.created_at) bits.push(formatTime(m.created_at));
      if (typeof m.score === "number") bits.push(`score ${m.score.toFixed(3)}`);
      if (Array.isArray(m.retrievers) && m.retrievers.length) bits.push(`via ${m.retrievers.map(asText).join(" + ")}`);
      list.append(
        el("li", { cls: "memory" }, el("p", { cls: "memory-text", text: asText(m.text) }),
          bits.length ? el("p", { cls: "memory-meta", text: bits.join(" · ") }) : null),
      );
    }
    const n = recalled.length;
    const summary = el("summary", { text: `Recalled ${n} ${n === 1 ? "memory" : "memories"}` });
    target.item.append(el("details", { cls: "recalled" }, summary, list));
  }

  /** Thumbs up and down under a finished answer (POST /api/feedback); the note says what memory learned. */
  function renderRating(target, conversationId, turnId) {
    const up = el("button", { cls: "small secondary rate", attrs: { type: "button", "aria-label": "Good answer", "aria-pressed": "false" } }, icon("up"), " Good");
    const down = el("button", { cls: "small secondary rate", attrs: { type: "button", "aria-label": "Bad answer", "aria-pressed": "false" } }, icon("down"), " Bad");
    const note = el("span", { cls: "rating-note muted", attrs: { role: "status" } });
    const rate = async (good) => {
      up.disabled = down.disabled = true;
      try {
        const body = { conversation_id: conversationId, turn_id: turnId, rating: good ? "good" : "bad" };
        const response = await api("/api/feedback", { method: "POST", body });
        if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
        const got = await response.json();
        const shown = Array.isArray(got.memories) ? got.memories : [];
        const n = shown.filter((m) => m && m.effect !== "not used").length;
        const unused = shown.length - n;
        up.setAttribute("aria-pressed", good ? "true" : "false");
        down.setAttribute("aria-pressed", good ? "false" : "true");
        note.textContent = n
          ? `Thanks: ${n} ${n === 1 ? "memory" : "memories"} the answer used will be ${good ? "preferred" : "demoted"} for similar questions.`
          : unused
            ? "Thanks: the answer used none of the memories recalled into it, so none of them moves."
            : "Thanks: no memories were recalled into this answer, so there is nothing to learn.";
      } catch (err) {
        note.textContent = `Not rated: ${err && err.message ? err.message : asText(err)}`;
      } finally {
        up.disabled = down.disabled = false;
      }
    };
    up.addEventListener("click", () => rate(true));
    down.addEventListener("click", () => rate(false));
    target.item.append(el("div", { cls: "rating" }, up, down, note));
  }

  function setBusy(busy) {
    ui.send.disabled = busy;
    ui.stop.hidden = !busy;
    ui.composer.setAttribute("aria-busy", busy ? "true" : "false");
  }

  async function sendMessage(content) {
    if (state.abort) return;
    const controller = new AbortController();
    state.abort = controller;
    setBusy(true);
    addMessage("user", content);
    const answer = addMessage("assistant", "");
    answer.item.classList.add("streaming");
    answer.item.setAttribute("aria-busy", "true");
    // memory: true - the user's own page: the turn goes into memory (a plain OpenAI client's does not)
    const payload = { messages: [{ role: "user", content }], stream: true, memory: true };
    if (state.conversationId) payload.conversation_id = state.conversationId;
    if (state.persona) payload.persona = state.persona;
    let finish = null;
    let turnId = null;
    try {
      const response = await api("/v1/chat/completions", { method: "POST", body: payload, signal: controller.signal });
      if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
      const returnedId = response.headers.get("X-Conversation-Id");
      if (returnedId) setConversation(returnedId);
      let first = true;
      for await (const event of readEvents(response)) {
        if (event.data === "[DONE]") break;
        let chunk;
        try {
          chunk = JSON.parse(event.data);
        } catch {
          continue;
        }
        if (chunk && chunk.error) throw new ApiError(500, asText(chunk.error.message || chunk.error));
        if (chunk.conversation_id) setConversation(asText(chunk.conversation_id));
        if (first) {
          first = false;
          renderRecalled(answer, chunk.recalled);
          if (chunk.persona) showPersona(asText(chunk.persona));
        }
        if (Number.isInteger(chunk.turn_id)) turnId = chunk.turn_id;
        const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : null;
        if (!choice) continue;
        const piece = choice.delta && choice.delta.content;
        if (typeof piece === "string" && piece) {
          const stick = nearBottom();
          answer.text.appendData(piece);
          answer.render(false);
          if (stick) requestAnimationFrame(scrollToEnd);
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
      if (finish === "length") answer.item.append(addNote("The answer was cut at the length limit.", "warn"));
      else if (!finish) answer.item.append(addNote("The answer stopped before it was complete.", "warn"));
      if (finish && turnId !== null && state.conversationId) renderRating(answer, state.conversationId, turnId);
    } catch (err) {
      if (controller.signal.aborted) {
        answer.item.append(addNote("Stopped. An answer stopped early is not kept in the conversation.", "warn"));
      } else {
        answer.item.classList.add("failed");
        answer.item.append(addNote(`Error: ${err && err.message ? err.message : asText(err)}`, "error"));
        // Nothing was answered: give the message back, so sending it again is one key.
        if (!answer.text.data && !ui.message.value) ui.message.value = content;
      }
    } finally {
      answer.item.classList.remove("streaming");
      answer.item.setAttribute("aria-busy", "false");
      if (!answer.text.data && !answer.item.classList.contains("failed")) answer.text.data = "(no answer)";
      answer.render(true);
      state.abort = null;
      setBusy(false);
    }
  }

  async function loadConversation() {
    const id = state.conversationId;
    if (!id) return;
    let response;
    try {
      response = await api(`/api/conversations/${encodeURIComponent(id)}`);
    } catch (err) {
      ui.messages.append(el("li", { cls: "note error", text: `Could not load the conversation: ${err.message}` }));
      return;
    }
    if (response.status === 404 || response.status === 400) {
      setConversation(""); // it was deleted, or never stored
      return;
    }
    if (!response.ok) {
      const message = await errorMessage(response);
      ui.messages.append(el("li", { cls: "note error", text: `Could not load the conversation: ${message}` }));
      return;
    }
    const body = await response.json();
    if (state.conversationId !== id || ui.messages.childElementCount > 0) return; // the user moved on
    for (const m of asList(body, ["messages"])) {
      if (!m || typeof m !== "object") continue;
      const shown = addMessage(asText(m.role), m.content, m.created_at);
      // Thumbs on a stored answer too, once the daemon names its turn id (GET /api/conversations/{id}).
      if (m.role === "assistant" && Number.isInteger(m.turn_id)) renderRating(shown, id, m.turn_id);
    }
    scrollToEnd();
  }

  function newConversation() {
    if (state.abort) state.abort.abort();
    setConversation("");
    ui.messages.replaceChildren();
    updateEmptyChat();
    ui.message.focus();
  }

  // ---------- personas ----------

  /** Show the conversation's persona in the picker (the daemon says which one answered). */
  function showPersona(name) {
    if ([...ui.persona.options].some((o) => o.value === name)) ui.persona.value = name;
  }

  async function loadPersonas() {
    let body;
    try {
      body = await getJSON("/api/personas");
    } catch {
      ui.persona.parentElement.hidden = true;
      return;
    }
    ui.persona.replaceChildren();
    for (const p of asList(body, ["data"])) {
      const name = firstText(p, ["name"]);
      if (!name) continue;
      const description = firstText(p, ["description"]);
      ui.persona.append(el("option", { text: description ? `${name} — ${description}` : name, attrs: { value: name } }));
    }
    showPersona(state.persona || firstText(body, ["default"]));
  }

  // ---------- notifications ----------

  function toast(title, body, urgent) {
    const item = el("div", { cls: `toast${urgent ? " urgent" : ""}` },
      el("strong", { text: title }), body ? el("span", { text: body }) : null);
    ui.toasts.append(item);
    window.setTimeout(() => item.remove(), urgent ? 15000 : 8000);
  }

  function showNotification(n, { live }) {
    if (!n || typeof n !== "object") return;
    const key = n.id !== undefined && n.id !== null ? asText(n.id) : null;
    if (key !== null) {
      if (state.seenNotifications.has(key)) return;
      state.seenNotifications.add(key);
    }
    const title = asText(n.title) || "(untitled)";
    const bits = [];
    if (n.source) bits.push(asText(n.source));
    if (n.created_at) bits.push(formatTime(n.created_at));
    const item = el("li", { cls: `notification${n.urgent ? " urgent" : ""}${live ? " new" : ""}` },
      el("p", { cls: "notification-title" }, n.urgent ? el("span", { cls: "urgent-label", text: "Urgent: " }) : null,
        document.createTextNode(title)),
      n.body ? el("p", { cls: "notification-body", text: asText(n.body) }) : null,
      bits.length ? el("p", { cls: "notification-meta", text: bits.join(" · ") }) : null);
    if (key !== null) item.dataset.id = key;
    ui.notifications.prepend(item);
    while (ui.notifications.childElementCount > MAX_NOTIFICATIONS) ui.notifications.lastElementChild.remove();
    ui.notificationsEmpty.hidden = true;
    if (live) toast(title, asText(n.body), Boolean(n.urgent));
    if (live && n.source === "reminders") loadReminders().catch(() => {});
  }

  async function loadRecentNotifications() {
    try {
      const response = await api("/api/notifications?limit=20");
      if (!response.ok) return; // no history endpoint: the live stream is enough
      const list = asList(await response.json(), ["data", "notifications", "items"]);
      // oldest first, so the newest ends on top
      const sorted = [...list].sort((a, b) => String(a && a.created_at).localeCompare(String(b && b.created_at)));
      for (const n of sorted) showNotification(n, { live: false });
    } catch {
      // history is a nicety; the stream below is what matters
    }
  }

  function setStreamState(text) {
    ui.notificationsState.textContent = text;
  }

  /** Why did the stream close? EventSource cannot tell, so ask once with fetch (headers only). */
  async function probeStream() {
    const controller = new AbortController();
    try {
      const response = await api("/api/notifications/stream", { signal: controller.signal });
      return (await partIsOff(response)) ? "off" : response.status;
    } catch (err) {
      return err instanceof ApiError ? err.status : 0;
    } finally {
      controller.abort();
    }
  }

  function startNotifications() {
    if (state.events) state.events.close();
    const url = "/api/notifications/stream" + (state.token ? `?token=${encodeURIComponent(state.token)}` : "");
    const events = new EventSource(url);
    state.events = events;
    setStreamState("connecting");
    events.addEventListener("open", () => {
      state.retryMs = 2000;
      setStreamState("live");
    });
    events.addEventListener("notification", (event) => {
      try {
        showNotification(JSON.parse(event.data), { live: true });
      } catch {
        // a malformed event is skipped, the stream goes on
      }
    });
    events.addEventListener("error", async () => {
      if (state.events !== events) return;
      if (events.readyState !== EventSource.CLOSED) {
        setStreamState("reconnecting");
        return; // the browser reconnects by itself
      }
      events.close();
      const status = await probeStream();
      if (state.events !== events) return; // a new token started a new stream meanwhile
      if (status === "off") {
        ui.notificationsSection.hidden = true;
        return;
      }
      if (status === 200) {
        startNotifications();
        return;
      }
      setStreamState("offline");
      window.setTimeout(() => {
        if (state.events === events) startNotifications();
      }, state.retryMs);
      state.retryMs = Math.min(state.retryMs * 2, 60000);
    });
  }

  // ---------- skills and schedules ----------

  function describeResult(body) {
    if (typeof body === "string") return body;
    if (body && typeof body === "object") {
      const nested = body.result && typeof body.result === "object" ? body.result : null;
      const text = firstText(body, ["text", "message", "answer"]) || firstText(nested, ["text", "message"]);
      const title = firstText(body, ["title"]);
      if (text) return title && !text.startsWith(title) ? `${title}\n${text}` : text;
      if (typeof body.result === "string") return body.result;
    }
    return JSON.stringify(body, null, 2);
  }

  async function runSkill(name, button, output) {
    button.disabled = true;
    output.hidden = false;
    output.classList.remove("error");
    output.textContent = "Running…";
    try {
      const response = await api(`/api/skills/${encodeURIComponent(name)}/run`, { method: "POST", body: {} });
      if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
      const type = response.headers.get("Content-Type") || "";
      const body = type.includes("json") ? await response.json() : await response.text();
      output.textContent = describeResult(body);
    } catch (err) {
      output.classList.add("error");
      output.textContent = `Error: ${err && err.message ? err.message : asText(err)}`;
    } finally {
      button.disabled = false;
    }
  }

  async function loadSection(path, section, status, listKeys) {
    status.textContent = "Loading…";
    let response;
    try {
      response = await api(path);
    } catch (err) {
      status.textContent = `Could not load: ${err.message}`;
      return null;
    }
    if (await partIsOff(response)) {
      section.hidden = true; // this daemon runs without that part
      return null;
    }
    if (!response.ok) {
      status.textContent = `Could not load: ${await errorMessage(response)}`;
      return null;
    }
    section.hidden = false;
    status.textContent = "";
    return asList(await response.json(), listKeys);
  }

  async function loadSkills() {
    const skills = await loadSection("/api/skills", ui.skillsSection, ui.skillsStatus, ["data", "skills", "items"]);
    if (skills === null) return;
    ui.skills.replaceChildren();
    if (skills.length === 0) ui.skillsStatus.textContent = "No skills are registered.";
    for (const s of skills) {
      const skill = typeof s === "string" ? { name: s } : s || {};
      const name = firstText(skill, ["name", "id"]);
      if (!name) continue;
      const output = el("pre", { cls: "skill-output", attrs: { "aria-live": "polite" } });
      output.hidden = true;
      const button = el("button", { cls: "small", text: "Run now", attrs: { type: "button", "aria-label": `Run skill ${name} now` } });
      button.addEventListener("click", () => runSkill(name, button, output));
      const details = el("div", { cls: "skill-info" }, el("p", { cls: "skill-name", text: name }));
      const description = firstText(skill, ["description", "summary"]);
      if (description) details.append(el("p", { cls: "skill-description", text: description }));
      // A skill's own "schedule" is only a suggestion; what is really scheduled comes from /api/schedules.
      const suggested = firstText(skill, ["schedule", "trigger"]);
      if (suggested) details.append(el("p", { cls: "skill-suggested muted", text: `Suggested: ${suggested}`, attrs: { title: "A suggestion: nothing runs until it is scheduled" } }));
      const item = el("li", { cls: "skill" }, el("div", { cls: "skill-row" }, details, button), output);
      item.dataset.skill = name;
      ui.skills.append(item);
    }
    markScheduledSkills();
  }

  /** On each skill card, its real schedules ("Scheduled: every 15 minutes") in place of the suggestion. */
  function markScheduledSkills() {
    for (const item of ui.skills.querySelectorAll(".skill")) {
      const when = state.scheduled.get(item.dataset.skill) || [];
      const info = item.querySelector(".skill-info");
      for (const old of info.querySelectorAll(".skill-scheduled")) old.remove();
      const suggestion = info.querySelector(".skill-suggested");
      if (suggestion) suggestion.hidden = when.length > 0;
      if (when.length) info.append(el("p", { cls: "skill-scheduled", text: `Scheduled: ${when.join("; ")}` }));
    }
  }

  function describeRun(run) {
    if (!run || typeof run !== "object") return asText(run);
    const status = firstText(run, ["status", "outcome", "result"]);
    const when = firstText(run, ["finished_at", "ended_at", "started_at", "at", "time"]);
    const error = firstText(run, ["error"]);
    return [status, when ? formatTime(when) : "", error].filter(Boolean).join(" · ") || asText(run);
  }

  /** One schedule as (title, value) rows, from whichever of the usual fields it has. */
  function scheduleRows(job) {
    const rows = [];
    const when = firstText(job, ["schedule", "description", "trigger", "cron"]);
    if (when) rows.push(["When", when]);
    const next = firstText(job, ["next_run_time", "next_run", "next_fire_time"]);
    if (job.paused === true) rows.push(["Next run", "paused"]);
    else if (next) rows.push(["Next run", formatTime(next)]);
    if (job.last_run) rows.push(["Last run", describeRun(job.last_run)]);
    if (job.args && typeof job.args === "object" && Object.keys(job.args).length) rows.push(["Arguments", asText(job.args)]);
    const zone = firstText(job, ["timezone"]);
    if (zone) rows.push(["Time zone", zone]);
    return rows;
  }

  async function loadSchedules() {
    const schedules = await loadSection("/api/schedules", ui.schedulesSection, ui.schedulesStatus,
      ["data", "schedules", "jobs", "items"]);
    if (schedules === null) return;
    ui.schedules.replaceChildren();
    state.scheduled = new Map();
    if (schedules.length === 0) ui.schedulesStatus.textContent = "Nothing is scheduled.";
    for (const s of schedules) {
      const job = s && typeof s === "object" ? s : { name: s };
      const label = firstText(job, ["skill", "name", "id"]) || "(unnamed)";
      const list = el("dl", { cls: "schedule-fields" });
      for (const [title, value] of scheduleRows(job)) list.append(el("dt", { text: title }), el("dd", { text: value }));
      const item = el("li", { cls: "schedule" }, el("p", { cls: "schedule-name", text: label }), list);
      if (job.id !== undefined) item.dataset.id = asText(job.id);
      ui.schedules.append(item);
      const skill = firstText(job, ["skill"]);
      const when = firstText(job, ["schedule", "description", "trigger", "cron"]);
      if (skill && when) state.scheduled.set(skill, [...(state.scheduled.get(skill) || []), job.paused === true ? `${when} (paused)` : when]);
    }
    markScheduledSkills();
  }

  // ---------- reminders, timers and alarms ----------

  function timeLeft(dueAt) {
    const ms = Date.parse(dueAt) - Date.now();
    if (!Number.isFinite(ms)) return "";
    if (ms <= 0) return "due now";
    const s = Math.round(ms / 1000);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) return `${d} d ${h} h left`;
    if (h) return `${h} h ${m} min left`;
    if (m) return `${m} min ${s % 60} s left`;
    return `${s} s left`;
  }

  function reminderLabel(r) {
    const what = asText(r.what);
    if (r.kind === "timer") return what ? `${what} timer` : "Timer";
    if (r.kind === "alarm") return "Alarm";
    return what ? `Reminder: ${what}` : "Reminder";
  }

  function tickReminders() {
    for (const item of ui.reminders.children) {
      const left = item.querySelector(".reminder-left");
      if (left && item.dataset.due) left.textContent = timeLeft(item.dataset.due);
    }
  }

  async function cancelReminder(id, button) {
    button.disabled = true;
    let problem = "";
    try {
      const response = await api(`/api/reminders/${encodeURIComponent(id)}/cancel`, { method: "POST", body: {} });
      if (!response.ok) problem = `Could not cancel: ${await errorMessage(response)}`;
    } catch (err) {
      problem = `Could not cancel: ${err && err.message ? err.message : asText(err)}`;
    }
    await loadReminders();
    if (problem) ui.remindersStatus.textContent = problem;
  }

  async function loadReminders() {
    const reminders = await loadSection("/api/reminders", ui.remindersSection, ui.remindersStatus, ["data"]);
    if (reminders === null) return;
    ui.reminders.replaceChildren();
    if (reminders.length === 0) {
      ui.remindersStatus.textContent = 'None set. Say "remind me in 20 minutes to …" or "set a timer for 10 minutes".';
    }
    for (const r of reminders) {
      if (!r || typeof r !== "object" || !r.id) continue;
      const id = asText(r.id);
      const label = reminderLabel(r);
      const button = el("button", { cls: "small secondary", text: "Cancel", attrs: { type: "button", "aria-label": `Cancel ${label}` } });
      button.addEventListener("click", () => cancelReminder(id, button));
      const when = [formatTime(r.due_at), r.schedule ? asText(r.schedule) : ""].filter(Boolean).join(" · ");
      const details = el("div", { cls: "skill-info" },
        el("p", { cls: "skill-name reminder-name", text: label }),
        el("p", { cls: "skill-description reminder-when", text: when }),
        el("p", { cls: "skill-description reminder-left", text: timeLeft(r.due_at) }));
      const item = el("li", { cls: "reminder" }, el("div", { cls: "skill-row" }, details, button));
      item.dataset.id = id;
      item.dataset.due = asText(r.due_at);
      ui.reminders.append(item);
    }
  }

  async function loadModel() {
    try {
      const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
      const response = await fetch("/healthz", { cache: "no-store", headers, credentials: "same-origin" });
      const body = await response.json();
      ui.model.textContent = body && body.model ? `Model: ${asText(body.model)}` : "";
    } catch {
      ui.model.textContent = "The daemon is not answering.";
    }
  }

  // ---------- wiring ----------

  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const content = ui.message.value.trim();
    if (!content || state.abort) return;
    ui.message.value = "";
    // a chat may set, move or cancel a reminder: the list follows
    sendMessage(content).finally(() => loadReminders().catch(() => {}));
  });
  ui.message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.composer.requestSubmit();
    }
  });
  ui.stop.addEventListener("click", () => state.abort && state.abort.abort());
  ui.newConversation.addEventListener("click", newConversation);
  ui.persona.addEventListener("change", () => {
    state.persona = ui.persona.value;
    storageSet(STORE.persona, state.persona);
  });
  ui.setToken.addEventListener("click", () => {
    askToken("Enter the daemon's API token (server.api_token), or leave it empty to clear it.")
      .then(() => Promise.all([loadSkills(), loadSchedules(), loadReminders()]))
      .catch(() => {});
  });
  ui.refreshSchedules.addEventListener("click", () => {
    loadSchedules();
  });

  updateEmptyChat();
  loadModel();
  loadPersonas().catch(() => {});
  // The conversation first: if it asks for the token, the other calls reuse the answer.
  loadConversation()
    .catch(() => {})
    .finally(() => {
      loadSkills().catch(() => {});
      loadSchedules().catch(() => {});
      loadReminders().catch(() => {});
      setInterval(tickReminders, 1000);
      loadRecentNotifications().finally(startNotifications);
    });
})();
