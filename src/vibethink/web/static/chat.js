/* The twin chat on platform pages and in the widget's iframe: sends with fetch, streams the reply (SSE). */
(function () {
  "use strict";
  var root = document.querySelector("[data-vt-chat]");
  if (!root) return;
  var deployment = root.getAttribute("data-deployment");
  var token = root.getAttribute("data-token") || new URLSearchParams(location.hash.slice(1)).get("t");
  var list = root.querySelector(".vt-messages");
  var form = root.querySelector("form");
  var input = form.querySelector("textarea");
  var button = form.querySelector("button");
  var status = root.querySelector(".vt-status");
  var storeKey = "vt-conversation-" + deployment;
  var conversation = null;
  try { conversation = sessionStorage.getItem(storeKey); } catch (e) { conversation = null; }

  function say(text) { status.textContent = text || ""; }
  function bubble(kind, text) {
    var item = document.createElement("li");
    item.className = "vt-msg vt-" + kind;
    item.textContent = text;
    list.appendChild(item);
    list.scrollTop = list.scrollHeight;
    return item;
  }
  function headers(extra) {
    var h = { "Content-Type": "application/json", "X-Fan-Token": token };
    for (var k in extra || {}) h[k] = extra[k];
    return h;
  }
  function failure(response) {
    return response.json().then(function (body) {
      var error = new Error(body.error ? body.error.message : "The twin cannot answer right now.");
      error.code = body.error && body.error.code;
      return error;
    }, function () { return new Error("The twin cannot answer right now."); });
  }
  function start() {
    if (conversation) return Promise.resolve(conversation);
    return fetch("/api/v1/chat/conversations", {
      method: "POST", headers: headers(), body: JSON.stringify({ deployment_id: deployment })
    }).then(function (r) {
      if (!r.ok) return failure(r).then(function (e) { throw e; });
      return r.json().then(function (c) {
        conversation = c.id;
        try { sessionStorage.setItem(storeKey, conversation); } catch (e) { /* private mode */ }
        return conversation;
      });
    });
  }
  function handle(block, reply) {
    var event = "message", data = "";
    block.split("\n").forEach(function (line) {
      if (line.indexOf("event: ") === 0) event = line.slice(7);
      else if (line.indexOf("data: ") === 0) data += line.slice(6);
    });
    if (!data || data === "[DONE]") return;
    var body = JSON.parse(data);
    if (event === "delta") { reply.firstChild.nodeValue += body.text; list.scrollTop = list.scrollHeight; }
    else if (event === "done" && body.disclosure) {
      var tag = document.createElement("small");
      tag.className = "vt-sponsor";
      tag.textContent = body.disclosure;
      reply.appendChild(tag);
    } else if (event === "error") { reply.firstChild.nodeValue = body.message; reply.classList.add("vt-failed"); }
  }
  function stream(id, text, retried) {
    return fetch("/api/v1/chat/conversations/" + id + "/messages", {
      method: "POST", headers: headers({ Accept: "text/event-stream" }), body: JSON.stringify({ content: text })
    }).then(function (r) {
      if (r.status === 404 && !retried) {  // an old conversation of another session: start afresh
        conversation = null;
        return start().then(function (fresh) { return stream(fresh, text, true); });
      }
      if (!r.ok) return failure(r).then(function (e) { throw e; });
      var reply = bubble("twin vt-pending", "");
      reply.appendChild(document.createTextNode(""));
      reply.setAttribute("aria-busy", "true");
      var reader = r.body.getReader(), decoder = new TextDecoder(), buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) { reply.classList.remove("vt-pending"); reply.removeAttribute("aria-busy"); return; }
          buffer += decoder.decode(chunk.value, { stream: true });
          var blocks = buffer.split("\n\n");
          buffer = blocks.pop();
          blocks.forEach(function (block) { handle(block, reply); });
          return pump();
        });
      }
      return pump();
    });
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || !token) return;
    input.value = "";
    button.disabled = true;
    bubble("fan", text);
    say("…");
    start().then(function (id) { return stream(id, text, false); })
      .then(function () { say(""); })
      .catch(function (error) { say(""); bubble("error", error.message); })
      .then(function () { button.disabled = false; input.focus(); });
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  if (!token) { say("This chat opens from the site that embeds it."); button.disabled = true; }
  if (root.hasAttribute("data-refresh") && token) {
    // Embed tokens live minutes: renew the same fan's session before it ends.
    setInterval(function () {
      fetch("/api/v1/widget/sessions/refresh", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: token })
      }).then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) { if (s) token = s.token; });
    }, 10 * 60 * 1000);
  }
})();
