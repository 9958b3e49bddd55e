// Tributary console: progressive enhancement only. Every page works without
// this file; with it, lists update live, copy buttons work, secrets are
// revealed in place, the path picker fills the focused parameter and the
// mapping preview follows the form. No inline script anywhere (the CSP
// forbids it).
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function copyText(text, button) {
    function done() {
      var before = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = before; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing else to try */ }
    document.body.removeChild(area);
  }

  function enableCopyButtons(root) {
    root.querySelectorAll("button.copy[data-copy-target]").forEach(function (button) {
      if (!button.classList.contains("after-reveal")) { button.hidden = false; }
      if (button.dataset.bound) { return; }
      button.dataset.bound = "1";
      button.addEventListener("click", function () {
        var target = document.getElementById(button.dataset.copyTarget);
        if (target) { copyText(target.dataset.value || target.textContent.trim(), button); }
      });
    });
  }

  // A reveal form posts with its CSRF token and shows the value in place.
  function enableReveals() {
    document.querySelectorAll("form.reveal").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        fetch(form.action, {
          method: "POST",
          headers: { "x-csrf-token": csrfToken(), "accept": "application/json",
                     "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams(new FormData(form)),
          credentials: "same-origin"
        }).then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
          .then(function (data) {
            var output = document.getElementById(form.dataset.output);
            if (!output) { return; }
            output.textContent = data.value;
            output.dataset.value = data.value;
            form.hidden = true;
            var copy = document.querySelector('button.copy[data-copy-target="' + output.id + '"]');
            if (copy) { copy.hidden = false; }
            if (form.dataset.copy) {
              var note = document.createElement("button");
              note.type = "button";
              note.className = "copy quiet";
              note.textContent = "Copy";
              note.setAttribute("aria-label", "Copy " + output.id.replace(/-/g, " "));
              note.addEventListener("click", function () { copyText(data.value, note); });
              output.parentNode.insertBefore(note, form);
              copyText(data.value, note);
            }
          }).catch(function () { form.submit(); });
      });
    });
  }

  // A block with data-poll is replaced by the fragment at its URL every 2 s.
  // A fragment of a page. A session that ended answers with a redirect to
  // sign-in: the whole page then goes there instead of showing it inside.
  function fragment(url) {
    return fetch(url, { credentials: "same-origin",
                        headers: { "accept": "text/html", "x-console-poll": "1" } })
      .then(function (r) {
        if (r.redirected) { window.location.reload(); return Promise.reject("signed out"); }
        return r.ok ? r.text() : Promise.reject(r.status);
      });
  }

  function poll(element) {
    var url = element.dataset.poll;
    var last = null;
    setInterval(function () {
      fragment(url).then(function (html) {
        // Replaced only on change, so screen readers are not told the same rows every 2 s.
        if (html !== last) {
          element.innerHTML = html;
          last = html;
        }
      }).catch(function () { /* the next round tries again */ });
    }, 2000);
  }

  // The event log's first page: rows newer than the newest shown are fetched
  // every 2 s and put on top.
  function tail(tbody) {
    var base = tbody.dataset.tail;
    setInterval(function () {
      var newest = tbody.querySelector("tr[data-id]");
      var after = newest ? newest.dataset.id : "";
      var url = base + (base.indexOf("?") < 0 ? "?" : "&") + "after=" + encodeURIComponent(after);
      fragment(url)
        .then(function (html) {
          if (!html.trim()) { return; }
          var holder = document.createElement("tbody");
          holder.innerHTML = html;
          var rows = Array.prototype.slice.call(holder.children);
          var empty = tbody.querySelector("tr.empty");
          if (empty) { empty.remove(); }
          for (var i = rows.length - 1; i >= 0; i--) {
            if (tbody.querySelector('tr[data-id="' + rows[i].dataset.id + '"]')) { continue; }
            rows[i].classList.add("new");
            tbody.insertBefore(rows[i], tbody.firstChild);
          }
          while (tbody.children.length > 200) { tbody.removeChild(tbody.lastChild); }
        })
        .catch(function () { /* the next round tries again */ });
    }, 2000);
  }

  // The path picker: each field of the sample event is a button that puts
  // its path into the parameter input focused last (the first one at start).
  function enablePicker() {
    var inputs = document.querySelectorAll("input.param-path");
    var picks = document.querySelectorAll("button.pick");
    if (!inputs.length || !picks.length) { return; }
    var target = inputs[0];
    var label = document.getElementById("pick-target");
    function show() {
      inputs.forEach(function (i) { i.classList.toggle("pick-target", i === target); });
      if (label) { label.textContent = "Choosing for: " + target.dataset.parameter + "."; }
    }
    inputs.forEach(function (input) {
      input.addEventListener("focus", function () { target = input; show(); });
    });
    picks.forEach(function (button) {
      button.addEventListener("click", function () {
        target.value = button.dataset.path;
        target.dispatchEvent(new Event("input", { bubbles: true }));
        if (label) { label.textContent = target.dataset.parameter + " reads " + button.dataset.path + "."; }
      });
    });
    show();
  }

  // The mapping preview follows the form: re-rendered by the server from
  // the form's fields (no CSRF token sent: it changes nothing).
  function enablePreview() {
    var form = document.getElementById("mapping-form");
    var output = document.getElementById("preview");
    if (!form || !output || !form.dataset.preview) { return; }
    var timer = null;
    var asked = 0;
    function refresh() {
      var fields = new URLSearchParams(new FormData(form));
      fields.delete("csrf");
      var mine = ++asked;
      fragment(form.dataset.preview + "?" + fields.toString()).then(function (html) {
        if (mine === asked) { output.innerHTML = html; output.dataset.round = String(mine); }
      }).catch(function () { /* the next change tries again */ });
    }
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    enableCopyButtons(document);
    enableReveals();
    enablePicker();
    enablePreview();
    document.querySelectorAll("[data-poll]").forEach(poll);
    document.querySelectorAll("tbody[data-tail]").forEach(tail);
    document.querySelectorAll(".live[hidden]").forEach(function (e) { e.hidden = false; });
  });
})();
