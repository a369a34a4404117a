// The one-click answer: the score from the e-mail is sent on the first trusted human interaction with the
// page (pointer, touch, key or scroll), never sooner than a second after the page was rendered. Scanners
// that only load the page send nothing; without JavaScript the Confirm button does the same job.
(function () {
  "use strict";
  var section = document.getElementById("answer");
  if (!section || !window.fetch || !window.FormData) { return; }
  var form = section.querySelector("form");
  var status = document.getElementById("status");
  var whyLabel = document.getElementById("why-label");
  var minWait = parseInt(section.getAttribute("data-min-wait"), 10) || 1000;
  var renderedAt = Date.now();
  var sentScore = null;
  var busy = false;

  function selectedScore() {
    var checked = form.querySelector("input[name=score]:checked");
    return checked ? checked.value : null;
  }

  function updateWhy() {
    var score = parseInt(selectedScore(), 10);
    if (isNaN(score)) { return; }
    for (var i = 0; i < whyLabel.attributes.length; i++) {
      var match = /^data-band-(\d+)-(\d+)$/.exec(whyLabel.attributes[i].name);
      if (match && score >= +match[1] && score <= +match[2]) {
        whyLabel.textContent = whyLabel.attributes[i].value;
      }
    }
  }

  function post(includeComment, message) {
    var score = selectedScore();
    if (score === null || busy) { return Promise.resolve(); }
    var wait = Math.max(0, renderedAt + minWait - Date.now());
    busy = true;
    status.textContent = section.getAttribute("data-saving");
    return new Promise(function (resolve) { setTimeout(resolve, wait); }).then(function () {
      var data = new FormData(form);
      if (!includeComment) { data.delete("comment"); }
      return fetch(form.getAttribute("action"), {
        method: "POST", body: data, credentials: "same-origin", headers: { "Accept": "application/json" }
      });
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      sentScore = score;
      status.textContent = message;
      document.getElementById("confirm").textContent = section.getAttribute("data-comment-label");
    }).catch(function () {
      status.textContent = section.getAttribute("data-failed");
    }).then(function () { busy = false; });
  }

  function firstHumanSignal(event) {
    if (!event.isTrusted || sentScore !== null) { return; }
    ["pointerdown", "touchstart", "keydown", "scroll", "wheel"].forEach(function (name) {
      window.removeEventListener(name, firstHumanSignal, true);
    });
    post(false, section.getAttribute("data-saved"));
  }

  ["pointerdown", "touchstart", "keydown", "scroll", "wheel"].forEach(function (name) {
    window.addEventListener(name, firstHumanSignal, { capture: true, passive: true });
  });

  form.addEventListener("change", function (event) {
    if (event.target.name !== "score") { return; }
    updateWhy();
    if (event.isTrusted && sentScore !== null && selectedScore() !== sentScore) {
      post(false, section.getAttribute("data-saved"));
    }
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!event.isTrusted) { return; }
    post(true, section.getAttribute("data-comment-saved"));
  });
})();
