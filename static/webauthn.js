// Twofold passkey forms. Load with <script src="/static/webauthn.js" defer></script>: no inline script,
// so it runs under a CSP of script-src 'self'.
//
// <form method="post" data-webauthn="register|authenticate" data-options="<options JSON, HTML-escaped>">
//   <p data-webauthn-error hidden></p>  <button type="submit">Use a passkey</button>
// </form>
// On submit (or a click on [data-webauthn-start]) it runs the ceremony, puts the response JSON in
// input[name=credential] and submits; on failure it shows a message and does not submit.
(function () {
  'use strict';

  var MESSAGES = {
    NotAllowedError: 'The passkey request was cancelled or timed out. Try again.',
    InvalidStateError: 'This passkey is already registered on your account.',
    SecurityError: 'Passkeys cannot be used on this address.',
    NotSupportedError: 'This device has no passkey this site can use.',
    unsupported: 'This browser does not support passkeys.',
    other: 'The passkey could not be used. Try again.',
  };

  function toBuffer(b64url) {
    var s = b64url.replace(/-/g, '+').replace(/_/g, '/');
    var bin = atob(s + '==='.slice((s.length + 3) % 4));
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function descriptors(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: toBuffer(c.id) }); });
  }

  function creationOptions(json) {
    if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function') return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    return Object.assign({}, json, {
      challenge: toBuffer(json.challenge),
      user: Object.assign({}, json.user, { id: toBuffer(json.user.id) }),
      excludeCredentials: descriptors(json.excludeCredentials),
    });
  }

  function requestOptions(json) {
    if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function') return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    return Object.assign({}, json, { challenge: toBuffer(json.challenge), allowCredentials: descriptors(json.allowCredentials) });
  }

  function credentialJSON(cred) {
    if (typeof cred.toJSON === 'function') return cred.toJSON();
    var r = cred.response;
    var response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toBase64url(r.attestationObject);
      response.transports = typeof r.getTransports === 'function' ? r.getTransports() : [];
    } else {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      if (r.userHandle) response.userHandle = toBase64url(r.userHandle);
    }
    return {
      id: cred.id, rawId: toBase64url(cred.rawId), type: cred.type, response: response,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    };
  }

  function showError(form, key) {
    var box = form.querySelector('[data-webauthn-error]') || document.querySelector('[data-webauthn-error]');
    if (!box) return;
    box.textContent = MESSAGES[key] || MESSAGES.other;
    box.setAttribute('role', 'alert');
    box.hidden = false;
  }

  function setBusy(form, busy) {
    form.querySelectorAll('button, input[type=submit]').forEach(function (b) { b.disabled = busy; });
  }

  async function run(form) {
    if (form.dataset.webauthnBusy === '1') return;
    if (!window.PublicKeyCredential || !navigator.credentials) return showError(form, 'unsupported');
    form.dataset.webauthnBusy = '1';
    setBusy(form, true);
    try {
      var json = JSON.parse(form.dataset.options);
      var cred = form.dataset.webauthn === 'register'
        ? await navigator.credentials.create({ publicKey: creationOptions(json) })
        : await navigator.credentials.get({ publicKey: requestOptions(json) });
      if (!cred) throw new Error('no credential');
      var input = form.querySelector('input[name="credential"]');
      if (!input) {
        input = document.createElement('input');
        input.type = 'hidden';
        input.name = 'credential';
        form.appendChild(input);
      }
      input.value = JSON.stringify(credentialJSON(cred));
      // The prototype's submit: fires no submit event (no loop) and is not shadowed by a control named "submit".
      HTMLFormElement.prototype.submit.call(form);
    } catch (error) {
      showError(form, error && error.name);
      setBusy(form, false);
      delete form.dataset.webauthnBusy;
    }
  }

  document.querySelectorAll('form[data-webauthn="register"], form[data-webauthn="authenticate"]').forEach(function (form) {
    form.addEventListener('submit', function (event) { event.preventDefault(); run(form); });
    form.querySelectorAll('[data-webauthn-start]').forEach(function (button) {
      button.addEventListener('click', function (event) { event.preventDefault(); run(form); });
    });
  });
})();
