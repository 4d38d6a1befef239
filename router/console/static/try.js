// The test page: one legal question through the public API, streamed, with what it cost and who answered.
import { authHeaders, el, errorMessage, seconds, setText, token, tokenForm } from "./common.js";

function showMode() {
  const pin = document.getElementById("pin");
  pin.disabled = !token();
  if (!token()) pin.value = "";
  setText("mode", token() ? "token set for this tab: the pinned colour answers"
    : "without the admin token every request follows the weights");
}

function resetResult() {
  const error = document.getElementById("error");
  error.hidden = true;
  error.textContent = "";
  setText("answer", "");
  for (const id of ["colour", "response-time", "ttft", "answer-length", "tokens"]) setText(id, "–");
  document.getElementById("colour").className = "";
}

function showError(message) {
  const error = document.getElementById("error");
  error.textContent = message;
  error.hidden = false;
}

// Server-sent events from a fetch body: each `data:` line as parsed JSON (the closing [DONE] ends it).
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of frame.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

async function ask(event) {
  event.preventDefault();
  resetResult();
  const button = document.getElementById("ask");
  button.disabled = true;
  const body = {
    question: document.getElementById("question").value,
    prompt_type: document.getElementById("prompt-type").value,
    stream: true,
  };
  const context = document.getElementById("context").value;
  if (context.trim()) body.context = context;
  const headers = { "Content-Type": "application/json" };
  const pin = document.getElementById("pin").value;
  if (pin && token()) Object.assign(headers, authHeaders(), { "X-Bluegreen-Pin": pin });
  const started = performance.now();
  let firstToken = null;
  let answer = "";
  try {
    const response = await fetch("/api/v1/chat/legal", { method: "POST", headers, body: JSON.stringify(body) });
    const colour = response.headers.get("X-Backend") || "?";
    setText("colour", colour);
    document.getElementById("colour").className = `badge ${colour}`;
    if (!response.ok) {
      showError(`${response.status}: ${await errorMessage(response)}`);
      return;
    }
    for await (const data of events(response)) {
      if (data.error) {
        showError(data.error.message || JSON.stringify(data.error));
      } else if (data.delta !== undefined) {
        if (firstToken === null) {
          firstToken = performance.now();
          setText("ttft", seconds((firstToken - started) / 1000));
        }
        answer += data.delta;
        setText("answer", answer);
      } else if (data.done) {
        const usage = data.usage || {};
        setText("tokens", `${usage.prompt_tokens ?? "?"} в вопросе · ${usage.completion_tokens ?? "?"} в ответе`);
      }
    }
    setText("response-time", seconds((performance.now() - started) / 1000));
    setText("answer-length", `${answer.length} символов`);
  } catch (error) {
    showError(`нет ответа: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

document.getElementById("ask-form").addEventListener("submit", ask);
tokenForm(showMode);
showMode();
