// Starts the vendored Swagger UI on /api/docs for /api/openapi.json (our
// code; a file, not an inline script, so the listener's CSP holds).
// Requests made with "Try it out" use the login session; state changes carry
// the session's CSRF token from the page's <meta name="postern-csrf">.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="postern-csrf"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    deepLinking: false,
    // Never load a spec or a configuration named in the page's query string
    // (?url=, ?configUrl=: the XSS vector of CVE-2018-25031).
    queryConfigEnabled: false,
    // No call to validator.swagger.io: nothing leaves this server.
    validatorUrl: null,
    requestInterceptor: function (req) {
      var method = (req.method || "GET").toUpperCase();
      var sameOrigin = new URL(req.url, window.location.href).origin === window.location.origin;
      if (csrf && sameOrigin && method !== "GET" && method !== "HEAD") {
        req.headers["X-CSRF-Token"] = csrf;
      }
      return req;
    }
  });
})();
