// Cloud sign-in: Firebase Authentication (Google) in the browser, then the ID token is exchanged
// once for an HttpOnly session cookie. The Firebase SDK is vendored into static/vendor at deploy.
(function () {
  var box = document.getElementById("firebase-signin");
  if (!box || !window.firebase) { return; }
  var status = document.getElementById("signin-status");
  firebase.initializeApp(JSON.parse(box.dataset.config));
  document.getElementById("google-signin").addEventListener("click", function () {
    status.textContent = "Signing in…";
    firebase.auth().signInWithPopup(new firebase.auth.GoogleAuthProvider())
      .then(function (cred) { return cred.user.getIdToken(); })
      .then(function (idToken) {
        var body = new URLSearchParams({ idToken: idToken, csrf: box.dataset.csrf });
        return fetch(box.dataset.sessionUrl, { method: "POST", body: body, credentials: "same-origin" });
      })
      .then(function (resp) {
        if (!resp.ok) { throw new Error("session refused (" + resp.status + ")"); }
        return firebase.auth().signOut();
      })
      .then(function () { window.location.assign(box.dataset.next); })
      .catch(function (err) { status.textContent = "Sign-in failed: " + err.message; });
  });
})();
