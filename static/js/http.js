// The page's one way to ask the server from script: every fetch goes through send() (post()
// for the usual POST), which sends what htmx's own requests send: the CSRF header from
// <body hx-headers> and HX-Request.

function headers(accept) {
  const own = document.body.getAttribute("hx-headers");
  const all = own ? JSON.parse(own) : {};
  all["HX-Request"] = "true";
  if (accept) all["Accept"] = accept;
  return all;
}

// Sends `method` to `url` with `form` (an object of fields, or nothing) as its body. `accept`
// asks for another answer than the fragment (e.g. "application/json"); `keepalive` lets the
// request outlive the page.
export function send(method, url, { form = null, accept = "", keepalive = false } = {}) {
  const init = { method, headers: headers(accept), credentials: "same-origin" };
  if (form) init.body = new URLSearchParams(form);
  if (keepalive) init.keepalive = true;
  return fetch(url, init);
}

export function post(url, options = {}) {
  return send("POST", url, options);
}
