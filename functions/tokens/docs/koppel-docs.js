/* Koppel's /docs page: Swagger UI over the document this deployment serves. Served after
   the Swagger UI bundle in one script (no inline script: the page's CSP forbids it). */
(function () {
  "use strict";
  var root = document.getElementById("koppel-docs");
  // The page puts the deployment's base in (`/live` on an execute-api URL, empty on a
  // custom domain at the root): the document and the API are under it.
  var base = root.getAttribute("data-base") || "";
  var specUrl = new URL(base + "/openapi.json", window.location.href).href;
  var apiUrl = new URL(base + "/", window.location.href).href.replace(/\/$/, "");

  // The document's server is relative ("."); tried operations go to the deployment that
  // serves this page, under its base, whatever Swagger UI would make of ".".
  function sameDeployment(spec) {
    if (spec && typeof spec === "object") {
      spec.servers = [{ url: apiUrl, description: "This deployment" }];
    }
    return spec;
  }

  // Headings of the document's description (the problems section, one per problem type)
  // get the ids a Markdown renderer would give them, so `/docs#problems` and the problem
  // `type` links land there.
  function anchorHeadings() {
    var heads = document.querySelectorAll(
      ".information-container .info h1, .information-container .info h2, " +
        ".information-container .info h3, .information-container .info h4"
    );
    for (var i = 0; i < heads.length; i++) {
      var h = heads[i];
      if (h.id) continue;
      var id = h.textContent
        .trim()
        .toLowerCase()
        .replace(/[^a-z0-9 _-]/g, "")
        .replace(/\s+/g, "-");
      if (id && !document.getElementById(id)) h.id = id;
    }
    return heads.length;
  }

  // Scrolls to a `#name` fragment once the element exists (Swagger UI renders after the
  // document has loaded, and may render the description again, dropping what was set on
  // it: so this looks again for a few seconds); `#/tag/operation` fragments are Swagger
  // UI's own deep links.
  // Swagger UI's deep linking takes any fragment for a tag and rewrites it (`#/problems`),
  // so the fragment asked for is kept from before it loads.
  var wanted = decodeURIComponent(window.location.hash.slice(1));
  var landing = 0;
  function landOnFragment() {
    var run = ++landing;
    var last = null;
    var tries = 50;
    (function look() {
      if (run !== landing) return;
      if (!wanted) return;
      anchorHeadings();
      var el = document.getElementById(wanted);
      if (el && el !== last) {
        last = el;
        mark(el).scrollIntoView();
        if (window.location.hash !== "#" + wanted) {
          history.replaceState(null, "", "#" + encodeURIComponent(wanted));
        }
      }
      if (--tries > 0) setTimeout(look, 100);
    })();
  }

  // An empty anchor (`<a id="problems"></a>`) marks what follows it: highlight that.
  function mark(el) {
    var shown = el;
    if (!el.textContent.trim()) {
      shown = el.nextElementSibling || (el.parentElement && el.parentElement.nextElementSibling) || el;
    }
    var old = document.querySelectorAll(".koppel-target");
    for (var i = 0; i < old.length; i++) old[i].classList.remove("koppel-target");
    shown.classList.add("koppel-target");
    return shown;
  }

  window.addEventListener("hashchange", function () {
    var hash = decodeURIComponent(window.location.hash.slice(1));
    if (hash.charAt(0) === "/") return;
    wanted = hash;
    landOnFragment();
  });

  fetch(specUrl, { headers: { Accept: "application/json" } })
    .then(function (r) {
      if (!r.ok) throw new Error(specUrl + " answered " + r.status);
      return r.json();
    })
    .then(function (spec) {
      window.koppelDocs = { specUrl: specUrl, apiUrl: apiUrl };
      window.ui = SwaggerUIBundle({
        spec: sameDeployment(spec),
        dom_id: "#koppel-docs-ui",
        presets: [SwaggerUIBundle.presets.apis],
        layout: "BaseLayout",
        deepLinking: true,
        docExpansion: "list",
        defaultModelsExpandDepth: 0,
        displayRequestDuration: true,
        filter: true,
        // Pasted credentials stay in this browser's storage until Logout.
        persistAuthorization: true,
        showExtensions: true,
        // Swagger UI would otherwise ask a validator on the internet about the document.
        validatorUrl: null,
        onComplete: function () {
          anchorHeadings();
          window.koppelDocs.ready = true;
          landOnFragment();
        },
      });
    })
    .catch(function (e) {
      var p = document.createElement("p");
      p.className = "koppel-error";
      p.textContent = "The API document could not be loaded: " + e.message;
      root.appendChild(p);
    });
})();
