// Gatehouse WebAuthn glue, loaded on every page (copy.js, the only other
// script, is on the new-token page alone). Pages work without
// it except for security keys and passkeys, which need the browser's
// navigator.credentials API. No framework, no inline script (the CSP allows
// only the site's own files).
"use strict";

(function () {
  function b64uToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), buf = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) buf[i] = bin.charCodeAt(i);
    return buf.buffer;
  }
  function bufToB64u(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // Options from the server carry binary fields as base64url strings.
  function decodeCreate(o) {
    var p = o.publicKey;
    p.challenge = b64uToBuf(p.challenge);
    p.user.id = b64uToBuf(p.user.id);
    (p.excludeCredentials || []).forEach(function (c) { c.id = b64uToBuf(c.id); });
    return o;
  }
  function decodeGet(o) {
    var p = o.publicKey;
    p.challenge = b64uToBuf(p.challenge);
    (p.allowCredentials || []).forEach(function (c) { c.id = b64uToBuf(c.id); });
    return o;
  }
  function encodeCredential(c) {
    var r = c.response, out = {
      id: c.id, rawId: bufToB64u(c.rawId), type: c.type,
      authenticatorAttachment: c.authenticatorAttachment || undefined,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: { clientDataJSON: bufToB64u(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = bufToB64u(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = bufToB64u(r.authenticatorData);
      out.response.signature = bufToB64u(r.signature);
      if (r.userHandle) out.response.userHandle = bufToB64u(r.userHandle);
    }
    return out;
  }

  function say(el, text, isError) {
    var box = document.getElementById(el.getAttribute("data-status") || "webauthn-status");
    if (box) { box.textContent = text; box.hidden = false; box.classList.toggle("webauthn-error", !!isError); }
  }

  // post sends a POST and returns the server's JSON answer. An answer that
  // is not JSON (a proxy's error page, a refused cross-origin request)
  // becomes a plain message rather than a JSON parse error.
  async function post(url, body) {
    var res = await fetch(url, { method: "POST", credentials: "same-origin", body: body,
      headers: { "Accept": "application/json" } });
    var out = null;
    try { out = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok || !out) {
      throw new Error((out && out.error) || "The server answered " + res.status + ". Reload the page and try again.");
    }
    return out;
  }

  async function run(button) {
    var form = button.closest("form");
    var kind = button.getAttribute("data-webauthn"); // "register" or "get"
    var optionsURL = button.getAttribute("data-options");
    var validateURL = button.getAttribute("data-validate");
    // A required field left empty (the key's name) stops here, as a submit
    // would: a credential made and then refused by the server would stay
    // on the authenticator.
    if (form && !form.reportValidity()) return;
    button.disabled = true;
    say(button, "Follow your browser's prompt…");
    try {
      var opts = await post(optionsURL);
      var cred = kind === "register"
        ? await navigator.credentials.create(decodeCreate(opts))
        : await navigator.credentials.get(decodeGet(opts));
      var body = new URLSearchParams(new FormData(form));
      body.set("credential", JSON.stringify(encodeCredential(cred)));
      var out = await post(validateURL, body);
      window.location.assign(out.redirect || "/");
    } catch (e) {
      var msg = (e && e.message) || String(e);
      if (e && e.name === "NotAllowedError") msg = "Cancelled or timed out. Try again.";
      // create() with an authenticator that holds one of excludeCredentials.
      if (e && e.name === "InvalidStateError" && kind === "register") msg = "This security key or passkey is already registered to your account.";
      say(button, msg, true);
      button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var supported = !!(window.PublicKeyCredential && navigator.credentials);
    document.querySelectorAll("[data-webauthn]").forEach(function (b) {
      if (!supported) {
        b.disabled = true;
        say(b, "This browser does not support security keys or passkeys.", true);
        return;
      }
      b.hidden = false;
      b.addEventListener("click", function (ev) { ev.preventDefault(); run(b); });
    });
  });
})();
