// The supervisor board: sign in, pick a worker, a day, a community, a month and a division, and see the
// pictures the server draws (SVG). Plain JavaScript, no library, nothing fetched from anywhere but this server.
// The access token lives in this page's memory only: reloading the page signs out.
"use strict";
(function () {
  const API = "/api/v1";
  let token = null;
  const $ = (id) => document.getElementById(id);

  async function call(path, options) {
    const response = await fetch(API + path, {
      ...(options || {}),
      headers: { ...(options && options.headers), ...(token ? { Authorization: "Bearer " + token } : {}) },
    });
    if (!response.ok) {
      let code = String(response.status);
      try { code = (await response.json()).code || code; } catch (e) { /* not JSON */ }
      throw new Error(code);
    }
    return response;
  }

  function fill(select, rows, label) {
    select.replaceChildren(...rows.map((row) => {
      const option = document.createElement("option");
      option.value = row.id;
      option.textContent = label(row);
      return option;
    }));
  }

  async function choices() {
    const rows = async (group) => (await (await call("/audit/activity?group=" + group)).json()).rows;
    const [workers, communities, streets, districts] = await Promise.all(
      ["worker", "community", "street", "district"].map(rows));
    fill($("worker"), workers, (r) => r.name + " (" + r.code + ") · " + r.visits.total);
    fill($("community"), communities, (r) => r.name + " " + (r.code || ""));
    fill($("division"), [...districts, ...streets, ...communities], (r) => r.name + " " + (r.code || ""));
    const today = new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10);  // the city's date (UTC+8)
    $("day").value = today;
    $("month").value = today.slice(0, 7);
  }

  async function picture(figure, path) {
    const text = await (await call(path)).text();
    const parsed = new DOMParser().parseFromString(text, "image/svg+xml");
    const holder = $(figure).querySelector(".picture");
    holder.replaceChildren(document.importNode(parsed.documentElement, true));
  }

  async function show(event) {
    if (event) event.preventDefault();
    $("status").textContent = "…";
    const q = (params) => new URLSearchParams(params).toString();
    try {
      await Promise.all([
        picture("worker-day", "/audit/pictures/worker-day?" + q({ worker_id: $("worker").value, day: $("day").value })),
        picture("coverage", "/audit/pictures/coverage?" + q({ community_id: $("community").value, month: $("month").value })),
        picture("trend", "/audit/pictures/trend?" + q({ division_id: $("division").value })),
      ]);
      $("status").textContent = "ready";
    } catch (error) {
      $("status").textContent = "error: " + error.message;
    }
  }

  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("login-error").textContent = "";
    try {
      const response = await call("/auth/login", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username: $("username").value, password: $("password").value }),
      });
      token = (await response.json()).access_token;
      $("password").value = "";
      await choices();
      $("login").hidden = true;
      $("board").hidden = false;
      $("status").textContent = "signed in";
    } catch (error) {
      $("login-error").textContent = "Sign-in failed: " + error.message;
    }
  });
  $("pick").addEventListener("submit", show);
})();
