// The one-click answer, for people and not for scanners.
//
// - The score from the e-mail is sent after the first trusted human interaction with the page (pointer, touch,
//   key or scroll), never sooner than a second after the page was rendered. Scanners that only load the page
//   send nothing; scripted (untrusted) events are ignored.
// - A person may change their mind: a new score is sent once it has stayed selected for a second (arrow keys
//   walk the scale without sending every step), and at once on submit or when the page is left. The server
//   keeps the last settled score.
// - Three or more different scores clicked inside one second is what no person does: the page reports the
//   flurry once and sends nothing more.
// - A link opened again shows the stored answer and sends nothing until the person changes it.
// - "Saved" is shown only when the server says the answer counts.
// Without JavaScript the Confirm button does the same job.
(function () {
  "use strict";
  var section = document.getElementById("answer");
  if (!section || !window.fetch || !window.FormData || !window.Promise) { return; }
  var form = section.querySelector("form.answer-form");
  var status = document.getElementById("status");
  var button = document.getElementById("confirm");
  var whyLabel = document.getElementById("why-label");
  var minWait = parseInt(section.getAttribute("data-min-wait"), 10) || 1000;
  var settle = parseInt(section.getAttribute("data-settle"), 10) || 1000;
  var reopened = section.hasAttribute("data-stored");
  var renderedAt = Date.now();
  var started = false;          // a trusted interaction happened
  var sent = reopened ? section.getAttribute("data-stored") : null;  // the score the server holds
  var timer = null;
  var flurry = false;
  var pointerAt = 0;            // the last pointer or touch press: clicks, not arrow keys, can be a flurry
  var clicks = [];              // [time, score] of recent pointer-made changes
  var chain = Promise.resolve();
  var signals = ["pointerdown", "touchstart", "keydown", "scroll", "wheel"];

  function selectedScore() {
    var checked = form.querySelector("input[name=score]:checked");
    return checked ? checked.value : null;
  }

  function updateWhy() {
    var score = parseInt(selectedScore(), 10);
    if (isNaN(score)) { return; }
    for (var i = 0; i < whyLabel.attributes.length; i++) {
      var match = /^data-band-(\d+)-(\d+)$/.exec(whyLabel.attributes[i].name);
      if (match && score >= +match[1] && score <= +match[2]) { whyLabel.textContent = whyLabel.attributes[i].value; }
    }
  }

  function keepInLanguageLinks(score) {
    var links = document.querySelectorAll("nav.languages a");
    for (var i = 0; i < links.length; i++) {
      var url = new URL(links[i].href);
      if (score !== null) { url.searchParams.set("score", score); }
      links[i].href = url.toString();
    }
  }

  function payload(score, withComment) {
    var data = new FormData(form);
    data.set("score", score);
    if (!withComment) { data.delete("comment"); }
    if (flurry) { data.set("flurry", "1"); }
    return data;
  }

  function send(score, withComment, message) {
    if (score === null) { return; }
    chain = chain.then(function () {
      status.textContent = section.getAttribute("data-saving");
      var wait = Math.max(0, renderedAt + minWait - Date.now());
      return new Promise(function (resolve) { setTimeout(resolve, wait); });
    }).then(function () {
      return fetch(form.getAttribute("action"), {
        method: "POST", body: payload(score, withComment), credentials: "same-origin",
        headers: { "Accept": "application/json" }
      });
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    }).then(function (body) {
      if (body && body.counts) {
        sent = String(body.score);
        status.textContent = message;
        button.textContent = section.getAttribute("data-comment-label");
        var change = document.getElementById("change");
        if (change) { change.hidden = true; }
      } else {
        status.textContent = section.getAttribute("data-not-saved");
      }
    }).catch(function () {
      status.textContent = section.getAttribute("data-failed");
    });
  }

  function settled() {
    timer = null;
    var score = selectedScore();
    if (!flurry && started && score !== null && score !== sent) {
      send(score, false, section.getAttribute("data-saved"));
    }
  }

  function schedule(delay) {
    if (timer !== null) { clearTimeout(timer); }
    timer = setTimeout(settled, delay);
  }

  function flush() {  // leaving the page: what is selected and not yet sent goes now
    if (timer === null || flurry || !navigator.sendBeacon) { return; }
    clearTimeout(timer);
    timer = null;
    var score = selectedScore();
    if (score !== null && score !== sent && Date.now() - renderedAt >= minWait) {
      navigator.sendBeacon(form.getAttribute("action"), payload(score, false));
    }
  }

  function firstHumanSignal(event) {
    if (!event.isTrusted) { return; }
    if (event.type === "pointerdown" || event.type === "touchstart") { pointerAt = Date.now(); }
    if (started) { return; }
    started = true;
    if (!reopened) {  // the score from the e-mail, once the page has been up for a second
      schedule(Math.max(0, renderedAt + minWait - Date.now()));
    }
  }

  signals.forEach(function (name) { window.addEventListener(name, firstHumanSignal, { capture: true, passive: true }); });
  window.addEventListener("pagehide", flush);
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "hidden") { flush(); } });

  form.addEventListener("change", function (event) {
    if (event.target.name !== "score") { return; }
    updateWhy();
    if (!event.isTrusted || flurry) { return; }
    var score = selectedScore();
    keepInLanguageLinks(score);
    var now = Date.now();
    if (now - pointerAt < 500) {  // a click or tap made this change
      clicks = clicks.filter(function (c) { return now - c[0] < 1000; });
      clicks.push([now, score]);
      var distinct = {};
      clicks.forEach(function (c) { distinct[c[1]] = true; });
      if (Object.keys(distinct).length >= 3) {
        flurry = true;  // report it once; nothing this page sends will count
        if (timer !== null) { clearTimeout(timer); timer = null; }
        send(score, false, section.getAttribute("data-saved"));
        return;
      }
    }
    schedule(settle);
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!event.isTrusted || flurry) { return; }
    if (timer !== null) { clearTimeout(timer); timer = null; }
    send(selectedScore(), true, section.getAttribute("data-comment-saved"));
  });
})();
