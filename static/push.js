// Waits for the answer to a push approval request and continues the sign-in
// by itself: polls the status every 2 seconds and submits the form once the
// request is approved or denied. Without JavaScript the button does the same.
(function () {
  'use strict';
  var form = document.querySelector('form[data-push-status]');
  if (!form) return;
  var url = form.getAttribute('data-push-status');
  var waiting = form.querySelector('[data-push-waiting]');
  var tries = 0;
  function poll() {
    tries += 1;
    if (tries > 300) return;
    fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (res) { return res.ok ? res.json() : { state: 'unknown' }; })
      .then(function (body) {
        if (body.state === 'pending') {
          setTimeout(poll, 2000);
          return;
        }
        // Approved, denied or expired: the server's answer to the form says what happened.
        if (waiting) waiting.textContent = body.state === 'approved' ? 'Approved. Continuing…' : 'Checking…';
        form.submit();
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
