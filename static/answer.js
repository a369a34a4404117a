// The one-click answer. The score from the e-mail is sent on the first trusted human interaction with the
// page (pointer, touch, key or scroll), never sooner than a second after the page was rendered. Scanners that
// only load the page send nothing; scripted (untrusted) clicks are ignored; a tool that clicks every score at
// once sends every score, which the server recognises as a flurry and does not count. Without JavaScript the
// Confirm button does the same job.
(function () {
  "use strict";
  var section = document.getElementById("answer");
  if (!section || !window.fetch || !window.FormData || !window.Promise) { return; }
  var form = section.querySelector("form");
  var status = document.getElementById("status");
  var button = document.getElementById("confirm");
  var whyLabel = document.getElementById("why-label");
  var minWait = parseInt(section.getAttribute("data-min-wait"), 10) || 1000;
  var renderedAt = Date.now();
  var started = false;      // a trusted interaction happened
  var flushed = false;      // the first answer went out
  var chosen = [];          // scores picked by trusted clicks before the first answer went out
  var lastQueued = null;
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

  function enqueue(score, withComment, message) {
    if (score === null) { return; }
    lastQueued = score;
    chain = chain.then(function () {
      status.textContent = section.getAttribute("data-saving");
      var wait = Math.max(0, renderedAt + minWait - Date.now());
      return new Promise(function (resolve) { setTimeout(resolve, wait); });
    }).then(function () {
      var data = new FormData(form);
      data.set("score", score);
      if (!withComment) { data.delete("comment"); }
      return fetch(form.getAttribute("action"), {
        method: "POST", body: data, credentials: "same-origin", headers: { "Accept": "application/json" }
      });
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      status.textContent = message;
      button.textContent = section.getAttribute("data-comment-label");
    }).catch(function () {
      status.textContent = section.getAttribute("data-failed");
    });
  }

  function flushFirst() {
    flushed = true;
    var scores = chosen.length ? chosen : [selectedScore()];
    scores.forEach(function (score) { enqueue(score, false, section.getAttribute("data-saved")); });
  }

  function firstHumanSignal(event) {
    if (!event.isTrusted || started) { return; }
    started = true;
    signals.forEach(function (name) { window.removeEventListener(name, firstHumanSignal, true); });
    setTimeout(flushFirst, Math.max(0, renderedAt + minWait - Date.now()));
  }

  signals.forEach(function (name) { window.addEventListener(name, firstHumanSignal, { capture: true, passive: true }); });

  form.addEventListener("change", function (event) {
    if (event.target.name !== "score") { return; }
    updateWhy();
    if (!event.isTrusted) { return; }
    var score = selectedScore();
    if (!flushed) {
      if (chosen[chosen.length - 1] !== score) { chosen.push(score); }
    } else if (score !== lastQueued) {
      enqueue(score, false, section.getAttribute("data-saved"));
    }
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!event.isTrusted) { return; }
    if (!flushed) { flushFirst(); }
    enqueue(selectedScore(), true, section.getAttribute("data-comment-saved"));
  });
})();
