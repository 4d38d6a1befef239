// Shared by the console and the test page: the admin token (this tab only), calls to the router,
// and DOM building that never parses data as HTML.

const TOKEN_KEY = "bluegreen-admin-token";

// The admin token lives in sessionStorage: gone when the tab closes, never in a URL or a cookie.
export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// Whether the router has an admin token at all (then its reads need it too); the page's body says.
export function tokenConfigured() {
  return document.body.dataset.adminToken === "configured";
}

export function authHeaders() {
  const value = token();
  return value ? { Authorization: `Bearer ${value}` } : {};
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The message of an error answer: the router's envelope `{"error": {"message"}}`, else its text.
export async function errorMessage(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && body.error && body.error.message) return body.error.message;
    if (body && body.detail) return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch (_) {
    // not JSON: the text itself
  }
  return text || `HTTP ${response.status}`;
}

// JSON from the router; a refusal becomes an ApiError carrying the API's own message.
export async function api(method, path, body) {
  const headers = { ...authHeaders() };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
  return response.json();
}

// An element with text content and attributes: data always lands as text, never as markup.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function setText(id, text) {
  document.getElementById(id).textContent = text;
}

export function seconds(value) {
  if (value === null || value === undefined) return "–";
  return value < 10 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(1)} s`;
}

export function percent(rate) {
  return rate === null || rate === undefined ? "–" : `${(rate * 100).toFixed(1)} %`;
}

// Wires a token form: the value is kept for this tab; `changed` runs after each change.
export function tokenForm(changed) {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    input.value = "";
    changed();
  });
  document.getElementById("token-forget").addEventListener("click", () => {
    setToken("");
    changed();
  });
}
