// sessiond console: niceties only. Every form works without this file.
"use strict";
document.addEventListener("submit", (event) => {
  // Forms of destructive actions ask first (the server acts only on the POST).
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
