// Reader comforts for the website (loaded by _config.yml, checked by tests/site).
(function () {
  "use strict";

  // An external picture that fails to load (the "Open in Colab" badge when offline) is
  // replaced by its alt text, styled as a badge; its link keeps working. A local figure
  // that fails stays broken, so that a missing file is seen (and the site tests catch it).
  function isExternal(img) {
    try {
      return new URL(img.getAttribute("src"), document.baseURI).origin !== location.origin;
    } catch (error) {
      return false;
    }
  }

  function textFor(img) {
    var span = document.createElement("span");
    var text = img.getAttribute("alt") || "picture";
    span.className = "image-text-fallback";
    span.textContent = text;
    span.setAttribute("role", "img");
    span.setAttribute("aria-label", text);
    img.replaceWith(span);
  }

  function watch(img) {
    if (!img.getAttribute("src") || !isExternal(img)) {
      return;
    }
    if (img.complete && img.naturalWidth === 0) {
      textFor(img); // it failed before this script ran
    } else {
      img.addEventListener("error", function () { textFor(img); }, { once: true });
    }
  }

  // The download button saves the notebook (.ipynb) instead of showing its JSON in a tab.
  function downloadNotebooks() {
    document.querySelectorAll("a.btn-download-source-button").forEach(function (link) {
      var path = new URL(link.getAttribute("href"), document.baseURI).pathname;
      if (path.endsWith(".ipynb")) {
        link.setAttribute("download", path.split("/").pop());
        link.removeAttribute("target");
      }
    });
  }

  function start() {
    document.querySelectorAll("img").forEach(watch);
    downloadNotebooks();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
