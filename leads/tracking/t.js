/* Leads Manager tracking snippet. Install with one tag:
 *   <script async src="https://YOUR-APP/t.js" data-site-key="site_..."></script>
 * Page views (with time on page and scroll depth), custom events, identify, form tracking and
 * personalization. Events are batched and sent as text/plain JSON, so no CORS preflight is needed.
 */
(function () {
  "use strict";
  if (window.leadsmgr && window.leadsmgr.__loaded) return;
  var script = document.currentScript || document.querySelector("script[data-site-key]");
  if (!script) return;
  var siteKey = script.getAttribute("data-site-key");
  var base = new URL(script.src, location.href).origin;
  var COOKIE = "_lm_vid";
  var queue = [];
  var timer = null;
  var formOptions = null;
  var trackedForms = [];

  function randomId() {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function visitorId() {
    var match = document.cookie.match(new RegExp("(?:^|; )" + COOKIE + "=([A-Za-z0-9_-]{8,64})"));
    var id = match ? match[1] : randomId();
    // First-party and renewed on every page: two years after the last visit.
    document.cookie = COOKIE + "=" + id + "; path=/; max-age=63072000; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
    return id;
  }

  var vid = visitorId();

  function endpoint(path) {
    return base + path + (path.indexOf("?") < 0 ? "?" : "&") + "k=" + encodeURIComponent(siteKey);
  }

  function send(events, leaving) {
    var body = JSON.stringify({ visitorId: vid, events: events, context: { js: true } });
    var url = endpoint("/api/v1/track");
    if (leaving && navigator.sendBeacon) {
      if (navigator.sendBeacon(url, new Blob([body], { type: "text/plain" }))) return Promise.resolve();
    }
    return fetch(url, { method: "POST", body: body, keepalive: body.length < 60000, headers: { "Content-Type": "text/plain" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .catch(function () { return null; });
  }

  function flush(leaving) {
    if (timer) { clearTimeout(timer); timer = null; }
    var sending = [];
    while (queue.length) sending.push(send(queue.splice(0, 100), leaving));
    return Promise.all(sending);
  }

  function enqueue(event, now) {
    event.messageId = event.messageId || randomId();
    event.timestamp = new Date().toISOString();
    queue.push(event);
    if (now || queue.length >= 20) return flush(now === "leaving");
    if (!timer) timer = setTimeout(flush, 1000);
    return Promise.resolve();
  }

  // --- page views, time on page, scroll depth ---
  var pageviewId = randomId();
  var visibleSince = document.visibilityState === "visible" ? Date.now() : null;
  var visibleMs = 0;
  var maxScroll = 0;
  var left = false;

  function scrollDepth() {
    var doc = document.documentElement;
    var seen = (window.scrollY || doc.scrollTop) + window.innerHeight;
    var total = Math.max(doc.scrollHeight, document.body ? document.body.scrollHeight : 0, 1);
    return Math.min(100, Math.round((seen / total) * 100));
  }

  function onScroll() { maxScroll = Math.max(maxScroll, scrollDepth()); }

  function pageview() {
    enqueue({ type: "pageview", messageId: pageviewId, url: location.href, title: document.title, referrer: document.referrer });
  }

  function leave() {
    if (left) return;
    left = true;
    if (visibleSince) visibleMs += Date.now() - visibleSince;
    onScroll();
    trackedForms.forEach(function (state) {
      if (state.touched && !state.submitted) formEvent("form_abandoned", state.form, {});
    });
    enqueue({ type: "page_leave", properties: { pageviewId: pageviewId, duration: Math.round(visibleMs / 1000), scrollDepth: maxScroll } });
    flush("leaving");
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") {
      if (visibleSince) { visibleMs += Date.now() - visibleSince; visibleSince = null; }
      flush("leaving");
    } else {
      visibleSince = Date.now();
    }
  });
  window.addEventListener("pagehide", leave);
  window.addEventListener("scroll", onScroll, { passive: true });

  // --- forms (seed 000: forms.trackAll) ---
  var SENSITIVE = /pass|card|cc-|cvv|cvc|ssn|iban|secret|token/i;

  function matchesAny(form, selectors) {
    return (selectors || []).some(function (selector) {
      try { return form.matches(selector); } catch (e) { return false; }
    });
  }

  function formId(form) {
    return form.id || form.getAttribute("name") || "form-" + Array.prototype.indexOf.call(document.forms, form);
  }

  function fieldName(field) { return field.name || field.id || ""; }

  function formEvent(name, form, properties) {
    var enabled = (formOptions && formOptions.trackEvents) || {};
    var key = name.replace(/_(\w)/g, function (_, c) { return c.toUpperCase(); });
    if (enabled[key] === false) return;
    properties.formId = formId(form);
    enqueue({ type: "form", name: name, url: location.href, properties: properties }, name === "form_submitted" ? "leaving" : false);
  }

  function formFields(form) {
    var mapping = (formOptions && formOptions.clientMapping) || {};
    var fields = {};
    Array.prototype.forEach.call(form.elements, function (field) {
      var name = fieldName(field);
      if (!name || field.disabled || /^(password|file|submit|button|reset|image)$/.test(field.type) || SENSITIVE.test(name)) return;
      if ((field.type === "checkbox" || field.type === "radio") && !field.checked) return;
      var value = field.value;
      if (field.type === "checkbox" && value === "on") value = true;
      fields[mapping[name] || name] = value;
    });
    return fields;
  }

  function trackForm(form) {
    if (trackedForms.some(function (s) { return s.form === form; })) return;
    var state = { form: form, touched: false, submitted: false, focused: {}, completed: {} };
    trackedForms.push(state);
    if ("IntersectionObserver" in window) {
      var observer = new IntersectionObserver(function (entries) {
        if (entries.some(function (e) { return e.isIntersecting; })) { observer.disconnect(); formEvent("form_viewed", form, {}); }
      });
      observer.observe(form);
    } else {
      formEvent("form_viewed", form, {});
    }
    form.addEventListener("focusin", function (e) {
      var name = fieldName(e.target);
      if (!name || state.focused[name] || SENSITIVE.test(name)) return;
      state.focused[name] = state.touched = true;
      formEvent("field_focused", form, { field: name });
    });
    form.addEventListener("change", function (e) {
      var name = fieldName(e.target);
      if (!name || state.completed[name] || SENSITIVE.test(name) || !e.target.value) return;
      state.completed[name] = true;
      formEvent("field_completed", form, { field: name });
    });
    form.addEventListener("submit", function () {
      state.submitted = true;
      formEvent("form_submitted", form, { fields: formFields(form) });
    });
  }

  function trackAll(options) {
    formOptions = options || formOptions || {};
    if (options && options.fieldMapping) formOptions.clientMapping = options.fieldMapping;
    var include = formOptions.include && formOptions.include.length ? formOptions.include : ["form"];
    Array.prototype.forEach.call(document.forms, function (form) {
      if (matchesAny(form, include) && !matchesAny(form, formOptions.exclude)) trackForm(form);
    });
  }

  // --- personalization: text only, never HTML ---
  function personalize() {
    return fetch(endpoint("/api/v1/personalization") + "&visitor=" + vid)
      .then(function (r) { return r.ok ? r.json() : { changes: [] }; })
      .then(function (data) {
        (data.changes || []).forEach(function (change) {
          document.querySelectorAll(change.selector).forEach(function (el) {
            if (typeof change.content === "string") el.textContent = change.content;
            if (change.show) { el.hidden = false; el.style.display = ""; }
            if (change.hide) el.style.display = "none";
          });
        });
        return data.changes || [];
      })
      .catch(function () { return []; });
  }

  var api = {
    __loaded: true,
    visitorId: function () { return vid; },
    track: function (name, properties) { return enqueue({ type: "event", name: name, url: location.href, properties: properties || {} }); },
    identify: function (traits) { return enqueue({ type: "identify", traits: traits || {} }, true); },
    page: pageview,
    flush: function () { return flush(false); },
    forms: { trackAll: function (options) { formOptions = null; trackAll(options || {}); } },
    personalize: personalize,
  };
  var pending = (window.leadsmgr && window.leadsmgr.q) || [];
  window.leadsmgr = api;

  function start() {
    pageview();
    var params = new URLSearchParams(location.search);
    if (params.get("_lmt")) {
      api.identify({ leadToken: params.get("_lmt") });
      params.delete("_lmt");
      var query = params.toString();
      history.replaceState(history.state, "", location.pathname + (query ? "?" + query : "") + location.hash);
    }
    pending.forEach(function (call) { api[call[0]] && api[call[0]].apply(api, call[1]); });
    fetch(endpoint("/api/v1/track/config"))
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (config) { if (config && !formOptions) trackAll(config.forms); })
      .catch(function () {});
    personalize();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
