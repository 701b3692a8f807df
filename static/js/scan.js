/* Staff console scan page.
 *
 * A handheld scanner is a keyboard: it types the card's code into the focused field and presses
 * Enter, which submits the form. Nothing here is needed for that. This script only keeps the field
 * focused, and offers a camera button where the browser has BarcodeDetector with QR support (the
 * button stays hidden everywhere else). No network resources: served by the app.
 */
(function () {
  "use strict";

  var form = document.getElementById("scan-form");
  if (!form) {
    return;
  }
  var input = form.querySelector("input[name=code]");
  var button = document.getElementById("camera-scan");
  var panel = document.getElementById("camera-panel");
  var video = document.getElementById("camera-video");
  var stopButton = document.getElementById("camera-stop");
  var cameraError = document.getElementById("camera-error");
  var stream = null;
  var scanning = false;

  function focusInput() {
    if (input && document.activeElement !== input && !scanning) {
      input.focus();
      input.select();
    }
  }

  focusInput();
  // Back at the till after using another window: the scanner should type into the field again.
  window.addEventListener("focus", focusInput);

  function submitCode(code) {
    input.value = code;
    if (typeof form.requestSubmit === "function") {
      form.requestSubmit();
    } else {
      form.submit();
    }
  }

  function stopCamera() {
    scanning = false;
    if (stream) {
      stream.getTracks().forEach(function (track) { track.stop(); });
      stream = null;
    }
    video.srcObject = null;
    panel.hidden = true;
    focusInput();
  }

  function showCameraError() {
    stopCamera();
    cameraError.textContent = cameraError.getAttribute("data-message");
    cameraError.hidden = false;
    panel.hidden = false;
  }

  function detectLoop(detector) {
    if (!scanning) {
      return;
    }
    detector.detect(video).then(function (codes) {
      var found = codes.filter(function (code) { return code.rawValue; })[0];
      if (found) {
        stopCamera();
        submitCode(found.rawValue.trim());
      } else {
        window.setTimeout(function () { detectLoop(detector); }, 200);
      }
    }).catch(function () {
      window.setTimeout(function () { detectLoop(detector); }, 400);
    });
  }

  function startCamera() {
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    cameraError.hidden = true;
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (mediaStream) {
        stream = mediaStream;
        video.srcObject = mediaStream;
        panel.hidden = false;
        scanning = true;
        return video.play();
      })
      .then(function () { detectLoop(detector); })
      .catch(showCameraError);
  }

  var cameraPossible = button && "BarcodeDetector" in window && navigator.mediaDevices &&
    typeof navigator.mediaDevices.getUserMedia === "function";
  if (!cameraPossible) {
    return;
  }
  var supported = typeof window.BarcodeDetector.getSupportedFormats === "function"
    ? window.BarcodeDetector.getSupportedFormats()
    : Promise.resolve(["qr_code"]);
  supported.then(function (formats) {
    if (formats.indexOf("qr_code") === -1) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", startCamera);
    stopButton.addEventListener("click", stopCamera);
  }).catch(function () { /* no camera scanning: the button stays hidden */ });
})();
