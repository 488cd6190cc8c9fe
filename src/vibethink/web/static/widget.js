/* VibeThink widget: <div id="vibethink-twin" data-deployment-key="…" data-theme="dark" data-position="bottom-right">.
   Opens a launcher and the twin's chat in an iframe. No dependencies; the identity secret never reaches it. */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src).origin : location.origin;
  var POSITIONS = /^(top|bottom)-(left|right)$/;

  function attr(el, name, fallback) { var v = el.getAttribute(name); return v === null || v === "" ? fallback : v; }

  function mount(el, session, theme, position) {
    var sides = position.split("-");
    var colour = /^#[0-9a-fA-F]{6}$/.test(session.theme.primaryColor || "") ? session.theme.primaryColor : "#4b3fd6";
    var host = el.attachShadow ? el.attachShadow({ mode: "open" }) : el;
    var panelId = "vibethink-panel";
    var style = document.createElement("style");
    style.textContent =
      ".l{position:fixed;" + sides[0] + ":20px;" + sides[1] + ":20px;width:60px;height:60px;border-radius:50%;border:0;" +
      "background:" + colour + ";color:#fff;font:600 26px/1 system-ui,sans-serif;cursor:pointer;z-index:2147483646;" +
      "box-shadow:0 6px 20px rgba(0,0,0,.3)}.l:focus-visible{outline:3px solid #ffbf47;outline-offset:3px}" +
      ".p{position:fixed;" + sides[0] + ":92px;" + sides[1] + ":20px;width:min(380px,calc(100vw - 24px));" +
      "height:min(580px,calc(100vh - 120px));border-radius:16px;overflow:hidden;z-index:2147483647;" +
      "box-shadow:0 12px 40px rgba(0,0,0,.35);background:" + (theme === "dark" ? "#111318" : "#fff") + "}" +
      ".p[hidden]{display:none}.p iframe{width:100%;height:100%;border:0}" +
      "@media (max-width:480px){.p{" + sides[0] + ":0;" + sides[1] + ":0;width:100vw;height:calc(100vh - 90px);border-radius:0}}";
    var launcher = document.createElement("button");
    launcher.className = "l";
    launcher.type = "button";
    launcher.setAttribute("aria-label", "Chat with " + session.name);
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-controls", panelId);
    launcher.textContent = "\uD83D\uDCAC";
    var panel = document.createElement("div");
    panel.className = "p";
    panel.id = panelId;
    panel.hidden = true;
    var frame = null;
    function toggle(open) {
      if (open && !frame) {
        frame = document.createElement("iframe");
        frame.title = "Chat with " + session.name;
        frame.allow = "clipboard-write";
        frame.src = session.frame_url + "?theme=" + theme + "#t=" + encodeURIComponent(session.token);
        panel.appendChild(frame);
      }
      panel.hidden = !open;
      launcher.setAttribute("aria-expanded", String(open));
      launcher.textContent = open ? "\u00D7" : "\uD83D\uDCAC";
      if (open && frame) frame.focus();
    }
    launcher.addEventListener("click", function () { toggle(panel.hidden); });
    host.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && !panel.hidden) { toggle(false); launcher.focus(); }
    });
    host.appendChild(style);
    host.appendChild(panel);
    host.appendChild(launcher);
    el.setAttribute("data-vt-state", "ready");
    el.vibethink = { open: function () { toggle(true); }, close: function () { toggle(false); } };
  }

  function init(el) {
    if (el.getAttribute("data-vt-state")) return;
    el.setAttribute("data-vt-state", "loading");
    var key = attr(el, "data-deployment-key", "");
    if (!key) { el.setAttribute("data-vt-state", "error"); console.warn("VibeThink: data-deployment-key is missing"); return; }
    var theme = attr(el, "data-theme", "dark") === "light" ? "light" : "dark";
    var position = attr(el, "data-position", "bottom-right");
    if (!POSITIONS.test(position)) position = "bottom-right";
    var body = { deployment_key: key };
    var user = attr(el, "data-user-id", null), signature = attr(el, "data-user-signature", null);
    if (user !== null) body.user_id = user;
    if (signature !== null) body.user_signature = signature;
    fetch(base + "/api/v1/widget/sessions", {
      method: "POST", credentials: "omit", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(j && j.error ? j.error.message : "refused");
        return j;
      });
    }).then(function (session) {
      mount(el, session, theme, position);
    }).catch(function (error) {
      el.setAttribute("data-vt-state", "refused");
      console.warn("VibeThink: the chat cannot open here (" + error.message + ")");
    });
  }

  function scan() {
    var found = document.querySelectorAll("#vibethink-twin, [data-vibethink-twin]");
    for (var i = 0; i < found.length; i++) init(found[i]);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
})();
