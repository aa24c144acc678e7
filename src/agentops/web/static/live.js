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
    }
    for (const [name, agent] of Object.entries(snapshot.agents)) {
      const row = rows.get(name);
      if (!row) continue;
      setStatus(row, agent.status);
      const badge = row.querySelector('[data-cell="status"]');
      setStatus(badge, agent.status);
      setText(badge, agent.status);
      for (const cell of ["attempts", "tokens", "cost", "duration"]) {
        setText(row.querySelector('[data-cell="' + cell + '"]'), agent[cell] ? String(agent[cell]) : "");
      }
    }
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
