/* Member portal card page: keep the QR code on screen current.
 *
 * A card token is issued at the start of each step (60 s) and accepted for 120 s, so the code is
 * replaced as soon as a new step begins: it is then never more than one step old when scanned. The
 * next step is worked out from the server's answer (expires_at and the response's Date header), not
 * from the phone's clock, which may be wrong. Coming back to the tab refreshes at once. Served by the
 * app; no other network resources.
 */
(function () {
  "use strict";

  var card = document.getElementById("card");
  var image = document.getElementById("card-qr");
  var offline = document.getElementById("card-offline");
  if (!card || !image || !window.fetch) {
    return;
  }
  var jsonUrl = card.dataset.jsonUrl;
  var imageUrl = card.dataset.imageUrl;
  var stepMs = Number(card.dataset.stepSeconds) * 1000;
  var maxAgeMs = Number(card.dataset.maxAgeSeconds) * 1000;
  var timer = null;

  function schedule(delayMs) {
    window.clearTimeout(timer);
    // Never wait longer than a step, never hammer the server.
    timer = window.setTimeout(refresh, Math.min(Math.max(delayMs, 2000), stepMs));
  }

  function untilNextStep(expiresAt, serverNow) {
    // Tokens are issued at the start of a step and expire max-age later.
    var nextStep = Date.parse(expiresAt) - maxAgeMs + stepMs;
    return nextStep - serverNow + 1000;
  }

  function refresh() {
    fetch(jsonUrl, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.redirected || response.status === 401 || response.status === 403) {
          window.location.reload(); // signed out: the page itself goes to the sign-in form
          return null;
        }
        if (!response.ok) {
          throw new Error("card.json " + response.status);
        }
        var serverNow = Date.parse(response.headers.get("Date") || "") || Date.now();
        return response.json().then(function (body) {
          image.src = imageUrl + "?v=" + encodeURIComponent(body.token.slice(-12));
          card.dataset.expiresAt = body.expires_at;
          if (offline) { offline.hidden = true; }
          schedule(untilNextStep(body.expires_at, serverNow));
        });
      })
      .catch(function () {
        if (offline) { offline.hidden = false; }
        schedule(5000);
      });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      refresh();
    }
  });
  schedule(untilNextStep(card.dataset.expiresAt, Number(card.dataset.serverNow) || Date.now()));
}());
