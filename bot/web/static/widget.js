/*
 * Soporte ecollect — widget de chat web.
 *
 * Embed in any site with one tag:
 *   <script src="https://SOPORTE/widget.js" data-rasa-url="https://RASA" defer></script>
 * Optional: data-mode="inline" data-target="#selector" to render inside an element.
 *
 * Talks to Rasa's socket.io channel (session persistence on), uploads files to
 * this server's /api/adjuntos, and keeps the conversation in localStorage so a
 * reload shows it again. Everything customer-facing is Spanish. Text from the
 * conversation is only ever inserted as text nodes (never as HTML).
 *
 * The help desk's messages after a ticket (an agent's reply, a status change,
 * the satisfaction question) come as bot_uttered with metadata.followup and an
 * acknowledgement callback: shown with their own header, counted as unread
 * while the chat is closed or the tab hidden, acknowledged once stored, and
 * never shown twice (the server sends one again when an acknowledgement was
 * lost, and on reconnect it sends what the customer missed).
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__ecollectSoporte) return;
  window.__ecollectSoporte = true;

  var base = new URL(script.src, window.location.href).origin;
  var config = {
    rasaUrl: (script.dataset.rasaUrl || base).replace(/\/$/, ""),
    mode: script.dataset.mode === "inline" ? "inline" : "floating",
    target: script.dataset.target || null,
    title: script.dataset.title || "Soporte ecollect",
  };
  var storageKey = "ecollect-soporte:" + config.rasaUrl;
  var MAX_STORED = 200;
  var MAX_SEEN = 500;
  var TYPING_TIMEOUT_MS = 20000;

  var T = {
    open: "¿Necesitas ayuda? Abrir el chat de Soporte ecollect",
    close: "Cerrar el chat",
    launcher: "¿Necesitas ayuda?",
    subtitle: "Asistente de la Mesa de ayuda",
    log: "Conversación con el asistente",
    input: "Escribe tu mensaje",
    placeholder: "Escribe tu mensaje…",
    send: "Enviar",
    attach: "Adjuntar archivo",
    typing: "El asistente está escribiendo…",
    offline: "Sin conexión con el asistente. Reintentando…",
    uploading: "Subiendo archivo…",
    uploadFailed: "No pude subir el archivo. Inténtalo de nuevo.",
    tooLarge: function (name, max) { return "El archivo «" + name + "» supera el máximo de " + max + "."; },
    options: "Opciones",
    you: "Tú",
    bot: "Asistente",
    loadError: "No se pudo cargar el chat. Recarga la página.",
    newChat: "Nueva conversación",
    confirmNewChat: "¿Empezar una conversación nueva? Se borrará la conversación de esta pantalla.",
    sendChoice: "Enviar mensaje",
    attached: "Archivo adjunto",
    sessionLost: "La conversación anterior no se pudo recuperar; empezamos una nueva.",
    sessionError: "No pude abrir la conversación con el asistente. Reintentando…",
    sessionBroken: "El asistente no acepta la sesión de este chat. Recarga la página o avisa a la mesa de ayuda.",
    desk: "Equipo de soporte",
    deskFor: function (ticket) { return "Equipo de soporte · " + ticket; },
    unread: function (count) { return count === 1 ? "1 mensaje nuevo" : count + " mensajes nuevos"; },
    unreadNotice: function (count) {
      return count === 1 ? "Tienes 1 mensaje nuevo en el chat de soporte." : "Tienes " + count + " mensajes nuevos en el chat de soporte.";
    },
  };

  // Card numbers (Luhn-valid runs of 13-19 digits) never stay on screen or in
  // localStorage; the server masks them the same way before storing anything.
  var CARD_MASK = "[tarjeta oculta]";
  function luhnValid(digits) {
    var total = 0;
    for (var i = 0; i < digits.length; i++) {
      var value = +digits.charAt(digits.length - 1 - i);
      if (i % 2 === 1) { value *= 2; if (value > 9) value -= 9; }
      total += value;
    }
    return total % 10 === 0;
  }
  function maskCards(text) {
    return text.replace(/(^|[^\d+-])(\d(?:[ -]?\d){12,18})(?![\d-])/g, function (all, before, run) {
      var digits = run.replace(/\D/g, "");
      return digits.length >= 13 && digits.length <= 19 && luhnValid(digits) ? before + CARD_MASK : all;
    });
  }

  // ------------------------------------------------------------ state
  function loadState() {
    try {
      var raw = window.localStorage.getItem(storageKey);
      var parsed = raw ? JSON.parse(raw) : null;
      if (parsed && Array.isArray(parsed.messages)) {
        if (!Array.isArray(parsed.seen)) parsed.seen = [];
        parsed.unread = Math.max(0, parseInt(parsed.unread, 10) || 0);
        return parsed;
      }
    } catch (e) { /* private mode or corrupt: start fresh */ }
    return freshState();
  }
  function freshState() { return { sessionId: null, messages: [], seen: [], unread: 0 }; }
  var state = loadState();
  function saveState() {
    state.messages = state.messages.slice(-MAX_STORED);
    state.seen = state.seen.slice(-MAX_SEEN);
    try { window.localStorage.setItem(storageKey, JSON.stringify(state)); } catch (e) { /* ignore */ }
  }

  // -------------------------------------------------------------- DOM
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key.indexOf("on") === 0) node.addEventListener(key.slice(2), attrs[key]);
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function humanSize(size) {
    if (size >= 1048576) return (size / 1048576).toFixed(1).replace(".0", "") + " MB";
    if (size >= 1024) return Math.round(size / 1024) + " KB";
    return size + " B";
  }

  /** Text with http(s) links made clickable, built from text nodes only. */
  function richText(text) {
    var fragment = document.createDocumentFragment();
    var pattern = /https?:\/\/[^\s<>"«»]+/g;
    var last = 0, match;
    while ((match = pattern.exec(text)) !== null) {
      if (match.index > last) fragment.appendChild(document.createTextNode(text.slice(last, match.index)));
      var url = match[0].replace(/[.,;:!?)]+$/, "");
      fragment.appendChild(el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: url }));
      last = match.index + url.length;
      pattern.lastIndex = last;
    }
    if (last < text.length) fragment.appendChild(document.createTextNode(text.slice(last)));
    return fragment;
  }

  /** A paperclip drawn as SVG: emoji glyphs are missing on many systems. */
  function clipIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "20");
    svg.setAttribute("height", "20");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5");
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "1.8");
    path.setAttribute("stroke-linecap", "round");
    svg.appendChild(path);
    return svg;
  }

  var host = el("div", { id: "ecollect-soporte" });
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  root.appendChild(el("link", { rel: "stylesheet", href: base + "/widget.css" }));

  var log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": T.log, tabindex: "0" });
  var typing = el("div", { class: "typing", role: "status", "aria-live": "polite" });
  var banner = el("div", { class: "banner", role: "alert", hidden: "" });
  var input = el("textarea", { class: "input", rows: "1", "aria-label": T.input, placeholder: T.placeholder, maxlength: "4000" });
  var fileInput = el("input", { type: "file", class: "file", tabindex: "-1", "aria-hidden": "true" });
  var attachButton = el("button", { type: "button", class: "attach", "aria-label": T.attach, title: T.attach }, [clipIcon()]);
  var sendButton = el("button", { type: "submit", class: "send", text: T.send, "aria-label": T.sendChoice });
  var form = el("form", { class: "composer" }, [attachButton, fileInput, input, sendButton]);
  var resetButton = el("button", { type: "button", class: "reset", text: T.newChat });
  var closeButton = el("button", { type: "button", class: "close", "aria-label": T.close, title: T.close, text: "×" });
  var header = el("div", { class: "header" }, [
    el("div", { class: "titles" }, [
      el("h2", { class: "title", id: "ecollect-title", text: config.title }),
      el("p", { class: "subtitle", text: T.subtitle }),
    ]),
    resetButton,
    config.mode === "floating" ? closeButton : null,
  ]);
  var panel = el("section", { class: "panel " + config.mode, role: "region", "aria-labelledby": "ecollect-title", id: "ecollect-panel", lang: "es" },
    [header, banner, log, typing, form]);
  var launcher = el("button", { type: "button", class: "launcher", "aria-controls": "ecollect-panel", "aria-expanded": "false", "aria-label": T.open, lang: "es", text: T.launcher });
  var badge = el("span", { class: "badge", "aria-hidden": "true", hidden: "" });
  launcher.appendChild(badge);
  // Announces new messages while the conversation itself is out of sight.
  var unreadStatus = el("div", { class: "sr-only", role: "status", "aria-live": "polite", lang: "es" });
  root.appendChild(panel);
  root.appendChild(unreadStatus);

  if (config.mode === "floating") {
    panel.hidden = true;
    root.appendChild(launcher);
    launcher.addEventListener("click", function () { setOpen(panel.hidden); });
    closeButton.addEventListener("click", function () { setOpen(false); launcher.focus(); });
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { setOpen(false); launcher.focus(); }
    });
  }
  function setOpen(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    launcher.hidden = open;
    if (open) { input.focus(); scrollDown(); greetIfNew(); markRead(); }
  }

  // ---------------------------------------------------------- unread
  function inSight() {
    return document.visibilityState !== "hidden" && !(config.mode === "floating" && panel.hidden);
  }
  function showUnread() {
    var count = state.unread || 0;
    badge.textContent = count > 99 ? "99+" : String(count);
    badge.hidden = count === 0;
    launcher.setAttribute("aria-label", count ? T.open + " (" + T.unread(count) + ")" : T.open);
    unreadStatus.textContent = count ? T.unreadNotice(count) : "";
  }
  function markRead() {
    if (!state.unread) return;
    state.unread = 0;
    saveState();
    showUnread();
  }
  document.addEventListener("visibilitychange", function () { if (inSight()) markRead(); });

  function mount() {
    var target = config.target ? document.querySelector(config.target) : null;
    (target || document.body).appendChild(host);
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  // ------------------------------------------------------- rendering
  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function renderMessage(message, index) {
    var who = message.from === "user" ? T.you : T.bot;
    var desk = message.from === "bot" && message.desk;
    var bubble = el("div", { class: "bubble" });
    if (message.text) bubble.appendChild(richText(message.text));
    if (message.file) {
      bubble.appendChild(el("span", { class: "file-chip", text: T.attached + ": " + message.file.name + " (" + humanSize(message.file.size) + ")" }));
    }
    if (message.image) bubble.appendChild(el("img", { src: message.image, alt: "Imagen enviada por el asistente" }));
    var item = el("div", { class: "message " + message.from + (desk ? " desk" : ""), "data-index": String(index) }, [
      desk ? el("p", { class: "desk-header", text: T.deskFor(message.desk.ticket) + ":" }) : el("span", { class: "sr-only", text: who + ": " }),
      bubble,
    ]);
    if (desk) item.setAttribute("data-followup", String(message.desk.id));
    if (message.buttons && message.buttons.length) {
      var active = !message.used && index === lastBotIndex();
      var group = el("div", { class: "buttons", role: "group", "aria-label": T.options });
      message.buttons.forEach(function (button) {
        var b = el("button", { type: "button", class: "option", text: button.title });
        if (!active) b.disabled = true;
        b.addEventListener("click", function () {
          message.used = true;
          sendPayload(button.title, button.payload);
        });
        group.appendChild(b);
      });
      item.appendChild(group);
    }
    return item;
  }

  function lastBotIndex() {
    for (var i = state.messages.length - 1; i >= 0; i--) if (state.messages[i].from === "bot") return i;
    return -1;
  }

  function renderAll() {
    // Re-rendering removes the focused option button; keep keyboard users in
    // the widget by moving focus to the message box instead of the page body.
    var hadFocus = root.activeElement && root.activeElement !== input && log.contains(root.activeElement);
    while (log.firstChild) log.removeChild(log.firstChild);
    state.messages.forEach(function (message, index) { log.appendChild(renderMessage(message, index)); });
    scrollDown();
    if (hadFocus) input.focus();
  }

  function addMessage(message) {
    message.ts = Date.now();
    state.messages.push(message);
    saveState();
    if (state.messages.length === 1 || log.childElementCount !== state.messages.length - 1) { renderAll(); return; }
    // Append only the new message, so screen readers announce it and nothing
    // else; earlier option buttons stop being answers to anything.
    // A focused option that gets disabled loses focus to the page; keyboard
    // users stay in the widget, on the message box.
    var focusedOption = root.activeElement && log.contains(root.activeElement) && root.activeElement.matches("button.option");
    Array.prototype.forEach.call(log.querySelectorAll("button.option"), function (b) { b.disabled = true; });
    log.appendChild(renderMessage(message, state.messages.length - 1));
    scrollDown();
    if (focusedOption) input.focus();
  }

  function notice(text) {
    addMessage({ from: "system", text: text });
  }

  var typingTimer = null;
  function setTyping(on) {
    typing.textContent = on ? T.typing : "";
    typing.classList.toggle("on", on);
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(function () { setTyping(false); }, TYPING_TIMEOUT_MS);
  }

  // ---------------------------------------------------------- socket
  var socket = null;
  var pending = [];

  function emit(message, metadata) {
    var data = { message: message, session_id: state.sessionId };
    if (metadata) data.metadata = metadata;
    if (socket && socket.connected && state.sessionId) socket.emit("user_uttered", data);
    else pending.push([message, metadata]);
    setTyping(true);
  }

  function flush() {
    var queued = pending;
    pending = [];
    queued.forEach(function (args) { emit(args[0], args[1]); });
  }

  function sendText(text) {
    text = text.trim();
    if (!text) return;
    addMessage({ from: "user", text: maskCards(text) });
    emit(text);
  }

  function sendPayload(title, payload) {
    addMessage({ from: "user", text: title });
    emit(payload);
  }

  var greeted = false;
  function greetIfNew() {
    if (greeted || state.messages.length || (config.mode === "floating" && panel.hidden)) return;
    greeted = true;
    emit("/greet");
  }

  /** The help desk's message this is (ticket, kind, id), or null for the assistant's own. */
  function followupOf(data) {
    var followup = data && data.metadata && data.metadata.followup;
    if (!followup || typeof followup !== "object") return null;
    var id = Number(followup.message_id);
    if (!isFinite(id) || id <= 0) return null;
    return { id: id, ticket: String(followup.ticket || "").slice(0, 40), kind: String(followup.kind || "").slice(0, 20) };
  }

  function onBotMessage(data, ack) {
    data = data && typeof data === "object" ? data : {};
    var desk = followupOf(data);
    if (desk && state.seen.indexOf(desk.id) !== -1) {
      // Sent again because our acknowledgement was lost: already on screen.
      if (typeof ack === "function") ack({ recibido: desk.id });
      return;
    }
    if (!desk) setTyping(false);
    var buttons = (data.quick_replies || data.buttons || []).map(function (b) {
      return { title: String(b.title || ""), payload: String(b.payload || b.title || "") };
    });
    var message = { from: "bot", text: data.text ? String(data.text) : "" };
    if (desk) message.desk = desk;
    if (buttons.length) message.buttons = buttons;
    if (data.attachment && data.attachment.type === "image" && data.attachment.payload) {
      message.image = String(data.attachment.payload.src || "");
    }
    if (message.text || message.buttons || message.image) {
      if (desk) state.seen.push(desk.id);
      if (!inSight()) state.unread = (state.unread || 0) + 1;
      addMessage(message);
      showUnread();
    }
    if (typeof ack === "function") ack(desk ? { recibido: desk.id } : {});
  }

  // The conversation id is issued and signed by the web server; Rasa's
  // socket.io channel refuses any other, so nobody can write into a
  // conversation they were not given.
  var freshRefusals = 0;
  function requestSession() {
    if (state.sessionId) { socket.emit("session_request", { session_id: state.sessionId }); return; }
    fetch(base + "/api/sesion", { method: "POST" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (data) {
      state.sessionId = String(data.session_id || "");
      saveState();
      socket.emit("session_request", { session_id: state.sessionId });
    }).catch(function () {
      banner.textContent = T.sessionError;
      banner.hidden = false;
      setTimeout(function () { if (socket && socket.connected) requestSession(); }, 5000);
    });
  }

  function connect() {
    socket = window.io(config.rasaUrl, { path: "/socket.io", transports: ["websocket", "polling"] });
    socket.on("connect", function () {
      banner.hidden = true;
      requestSession();
    });
    socket.on("session_refused", function () {
      setTyping(false);
      var hadConversation = state.messages.length > 0;
      if (!hadConversation && ++freshRefusals > 1) {
        banner.textContent = T.sessionBroken;
        banner.hidden = false;
        return;
      }
      state = freshState();
      saveState();
      greeted = false;
      renderAll();
      showUnread();
      if (hadConversation) notice(T.sessionLost);
      requestSession();
    });
    socket.on("session_confirm", function (sessionId) {
      var id = typeof sessionId === "string" ? sessionId : sessionId && sessionId.session_id;
      if (id && id !== state.sessionId) { state.sessionId = id; saveState(); }
      freshRefusals = 0;
      flush();
      greetIfNew();
    });
    socket.on("bot_uttered", onBotMessage);
    socket.on("disconnect", function () { banner.textContent = T.offline; banner.hidden = false; });
    socket.on("connect_error", function () { banner.textContent = T.offline; banner.hidden = false; });
  }

  // ------------------------------------------------------- uploads
  var uploadConfig = { max_bytes: 10485760, accept: "", limits: "" };
  fetch(base + "/api/config").then(function (r) { return r.json(); }).then(function (data) {
    uploadConfig = data;
    fileInput.setAttribute("accept", data.accept || "");
    attachButton.title = T.attach + " (" + data.limits + ")";
  }).catch(function () { /* defaults stay; the server still checks */ });

  function upload(file) {
    if (file.size > uploadConfig.max_bytes) {
      notice(T.tooLarge(file.name, humanSize(uploadConfig.max_bytes)));
      return;
    }
    if (!state.sessionId) { notice(T.uploadFailed); return; }
    var body = new FormData();
    body.append("archivo", file, file.name);
    body.append("sesion", state.sessionId);
    var request = new XMLHttpRequest();
    request.open("POST", base + "/api/adjuntos");
    request.setRequestHeader("X-Sesion-Chat", state.sessionId);
    request.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) typing.textContent = T.uploading + " " + Math.round((event.loaded / event.total) * 100) + " %";
    });
    request.addEventListener("load", function () {
      typing.textContent = "";
      var data = {};
      try { data = JSON.parse(request.responseText); } catch (e) { /* handled below */ }
      if (request.status !== 201) { notice(data.error || T.uploadFailed); return; }
      addMessage({ from: "user", file: { name: data.name, size: data.size } });
      emit("/attach", { attachments: [{ id: data.id, name: data.name, content_type: data.content_type, size: data.size }] });
    });
    request.addEventListener("error", function () { typing.textContent = ""; notice(T.uploadFailed); });
    typing.textContent = T.uploading;
    request.send(body);
  }

  // --------------------------------------------------------- events
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    sendText(input.value);
    input.value = "";
    fitInput();
    input.focus();
  });
  function fitInput() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 128) + "px";
  }
  input.addEventListener("input", fitInput);
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
    }
  });
  attachButton.addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () {
    Array.prototype.slice.call(fileInput.files || []).forEach(upload);
    fileInput.value = "";
  });
  resetButton.addEventListener("click", function () {
    if (state.messages.length && !window.confirm(T.confirmNewChat)) return;
    state = freshState();
    saveState();
    greeted = false;
    renderAll();
    showUnread();
    if (socket) { socket.disconnect(); socket.connect(); }
  });

  renderAll();
  if (inSight()) markRead(); else showUnread();
  var loader = document.createElement("script");
  loader.src = base + "/vendor/socket.io.min.js";
  loader.onload = connect;
  loader.onerror = function () { banner.textContent = T.loadError; banner.hidden = false; };
  if (window.io) connect(); else document.head.appendChild(loader);
})();
