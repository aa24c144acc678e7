// Live updates for a run that is still going: the server streams snapshots (server-sent
// events) and this script writes them into the page in place. It only ever sets attributes
// and textContent, never HTML built from data, so nothing it receives can run as code.
"use strict";
(function () {
  const root = document.querySelector("[data-events-url]");
  if (!root || typeof EventSource === "undefined") return;

  const nodes = new Map();
  for (const element of document.querySelectorAll("[data-node]")) nodes.set(element.dataset.node, element);
  const rows = new Map();
  for (const element of document.querySelectorAll("[data-agent-row]")) rows.set(element.dataset.agentRow, element);

  function setText(element, text) {
    if (element && element.textContent !== text) element.textContent = text;
  }

  function setStatus(element, status) {
    if (element && element.dataset.status !== status) element.dataset.status = status;
  }

  function applyRun(run) {
    root.dataset.runStatus = run.status;
    const badge = document.querySelector('[data-field="status"]');
    setStatus(badge, run.status);
    setText(badge, run.status);
    for (const key of ["cost", "cap", "tokens", "settled", "duration", "critical_path", "critical_seconds"]) {
      setText(document.querySelector('[data-field="' + key + '"]'), String(run[key] || "-"));
    }
    const meter = document.querySelector('[data-field="meter"]');
    if (meter) meter.value = run.cost_value;
  }

  function applyRunPage(snapshot) {
    applyRun(snapshot.run);
    for (const [key, box] of Object.entries(snapshot.boxes)) {
      const element = nodes.get(key);
      if (!element) continue;
      setStatus(element, box.status);
      setText(element.querySelector("text.caption"), box.caption);
      if (box.label) setText(element.querySelector("text.name"), box.label);
      // A fan-out's bar: each status's segment moves and stretches (numbers set as attributes).
      for (const [status, [x, width]] of Object.entries(box.segments || {})) {
        const segment = element.querySelector('rect[data-segment="' + status + '"]');
        if (!segment) continue;
        segment.setAttribute("x", String(x));
        segment.setAttribute("width", String(width));
      }
    }
    for (const [name, agent] of Object.entries(snapshot.agents)) {
      const row = rows.get(name);
      if (row) {
        setStatus(row, agent.status);
        const badge = row.querySelector('[data-cell="status"]');
        setStatus(badge, agent.status);
        setText(badge, agent.label);
        for (const cell of ["attempts", "tokens", "cost", "duration"]) {
          setText(row.querySelector('[data-cell="' + cell + '"]'), agent[cell] ? String(agent[cell]) : "");
        }
      }
      if (agent.items) refreshItems(name, agent);
    }
  }

  // A fan-out's items list on the run page: its summary is set as text; an open list whose
  // counts changed is fetched again (HTML the server escaped) and put in place of the old one.
  const itemCounts = new Map();
  async function refreshItems(name, agent) {
    const details = document.getElementById("items-" + name);
    if (!details) return;
    setText(details.querySelector("[data-items-summary]"), agent.items_summary || "");
    const badge = details.querySelector("summary .badge");
    setStatus(badge, agent.status);
    setText(badge, agent.status);
    const counts = JSON.stringify(agent.items);
    if (itemCounts.get(name) === counts || !details.open) return;
    itemCounts.set(name, counts);
    const url = "/runs/" + root.dataset.run + "/items/" + encodeURIComponent(name);
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) return;
    const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
    const body = parsed.querySelector("[data-items-body]");
    const current = details.querySelector("[data-items-body]");
    if (body && current) current.replaceWith(document.adoptNode(body));
  }

  // The agent page: when this agent's status changes, fetch its body again (HTML the
  // server escaped) and put it in place of the old one.
  async function refreshAgentPage(snapshot) {
    const name = root.dataset.agentPage;
    const agent = snapshot.agents[name];
    if (!agent || agent.status === root.dataset.status) return;
    root.dataset.status = agent.status;
    const response = await fetch(root.dataset.bodyUrl, { credentials: "same-origin" });
    if (!response.ok) return;
    const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
    const body = parsed.querySelector("[data-agent-body]");
    const current = root.querySelector("[data-agent-body]");
    if (body && current) current.replaceWith(document.adoptNode(body));
  }

  function apply(snapshot) {
    if (root.dataset.agentPage !== undefined) refreshAgentPage(snapshot);
    else applyRunPage(snapshot);
  }

  const source = new EventSource(root.dataset.eventsUrl);
  source.addEventListener("update", (event) => apply(JSON.parse(event.data)));
  source.addEventListener("end", (event) => {
    apply(JSON.parse(event.data));
    source.close();
    root.removeAttribute("data-events-url");
    root.dataset.live = "ended";
  });
})();
