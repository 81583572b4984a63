// The alignment history's restore forms (alerts/templates/alignment*.html.j2). A restore is a
// write: it is sent with the write token in the Authorization header, as approve and reject are
// (a cross-site form cannot set it). The token is typed once per tab and kept in sessionStorage,
// under the same key as the review page's, never written into the HTML.
(() => {
  const KEY = "territory-api-token";
  const fields = document.getElementById("restore-fields");
  if (!fields) return;
  const token = document.getElementById("token");
  const result = document.getElementById("restore-result");
  const buttons = document.querySelectorAll("form.restore button");
  token.value = sessionStorage.getItem(KEY) || "";
  const show = (text, kind) => { result.textContent = text; result.className = kind; };

  async function restore(form) {
    const by = fields.elements.by.value.trim();
    const comment = fields.elements.comment.value.trim();
    const secret = token.value.trim();
    if (!by) { show("Your name is required: it goes into the audit log.", "error"); fields.elements.by.focus(); return; }
    if (!secret) { show("Enter the API token (TERRITORY_API_TOKEN).", "error"); token.focus(); return; }
    sessionStorage.setItem(KEY, secret);
    buttons.forEach((b) => { b.disabled = true; });
    show(`Proposing to restore ${form.dataset.label}…`, "");
    try {
      // The answer is a 303 to the new proposal's review page; fetch follows it.
      const response = await fetch(form.dataset.restore, {
        method: "POST", credentials: "same-origin",
        headers: {"Authorization": `Bearer ${secret}`, "Content-Type": "application/json"},
        body: JSON.stringify({by, comment}),
      });
      if (response.ok && response.redirected) { window.location.assign(response.url); return; }
      const body = await response.json().catch(() => ({}));
      if (response.status === 401 || response.status === 403) sessionStorage.removeItem(KEY);
      show(`Refused (${response.status}): ${body.error || response.statusText}`, "error");
    } catch (error) {
      show(`The request failed: ${error}`, "error");
    }
    buttons.forEach((b) => { b.disabled = false; });
  }
  document.querySelectorAll("form.restore").forEach((form) => {
    form.addEventListener("submit", (event) => { event.preventDefault(); restore(form); });
  });
})();
