// The API key dialog: shown on any 401; the key lives in sessionStorage for this tab only.
import { apiKey, forgetKey, setKeyPrompt } from "./api.js";
import { h, replace } from "./dom.js";

/** Wire the dialog in index.html to api.js and show the key's state in the top bar. */
export function installKeyPrompt() {
  const dialog = document.getElementById("key-dialog");
  const form = document.getElementById("key-form");
  const input = document.getElementById("key-input");
  const message = document.getElementById("key-message");
  let answer = null;

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) {
      input.focus();
      return;
    }
    dialog.close();
    answer(value);
  });
  document.getElementById("key-cancel").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    if (answer) answer(null);
    renderKeyState();
  });

  setKeyPrompt((text) => new Promise((resolve) => {
    answer = (key) => {
      answer = null;
      resolve(key);
    };
    message.textContent = text;
    message.classList.toggle("error", /refused/i.test(text));
    input.value = "";
    renderKeyState();
    dialog.showModal();
    input.focus();
  }));
  renderKeyState();
}

/** "Key set · Forget" in the top bar while this tab holds a key. */
export function renderKeyState() {
  const slot = document.getElementById("key-state");
  if (!apiKey()) {
    replace(slot);
    return;
  }
  replace(slot, h("span", { class: "muted" }, "API key set"), " ",
    h("button", {
      class: "link", type: "button",
      onclick: () => {
        forgetKey();
        renderKeyState();
      },
    }, "Forget"));
}
