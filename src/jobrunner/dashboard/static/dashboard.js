// jobrunner dashboard: live panels over Server-Sent Events, confirmations, copy buttons.
// Plain JavaScript, no build step; the pages work without it (they just stop updating).
"use strict";

(function () {
  function setProgress(root, data) {
    var bar = root.querySelector("#job-progress");
    if (bar) { bar.value = data.progress; }
    var text = root.querySelector("#job-progress-text");
    if (text) { text.textContent = Math.round(data.progress) + "%"; }
    var message = root.querySelector("#job-message");
    if (message) { message.textContent = data.message || ""; }
    var status = root.querySelector("#job-status");
    if (status) {
      status.textContent = data.status;
      status.className = "status status-" + data.status;
    }
  }

  // <div data-stream="url" data-event="name">: replace its content with each "name" event.
  function follow(root) {
    if (!window.EventSource || root.hasAttribute("data-done")) { return; }
    var source = new EventSource(root.getAttribute("data-stream"));
    source.addEventListener(root.getAttribute("data-event"), function (e) {
      root.innerHTML = e.data;
    });
    source.addEventListener("progress", function (e) { setProgress(root, JSON.parse(e.data)); });
    source.addEventListener("end", function () {
      source.close();
      root.setAttribute("data-done", "");
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  document.addEventListener("submit", function (e) {
    var form = e.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { e.preventDefault(); return; }
    if (form.method === "get") {  // leave empty filters out of the URL
      var fields = form.querySelectorAll("input[name], select[name]");
      for (var i = 0; i < fields.length; i++) {
        if (!fields[i].value) { fields[i].disabled = true; }
      }
    }
  });

  document.addEventListener("click", function (e) {
    var id = e.target.getAttribute && e.target.getAttribute("data-copy");
    if (!id) { return; }
    var field = document.getElementById(id);
    field.select();
    if (navigator.clipboard) { navigator.clipboard.writeText(field.value); }
    e.target.textContent = "Copied";
  });

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.querySelectorAll("[data-stream]");
    for (var i = 0; i < live.length; i++) { follow(live[i]); }
  });
})();
