// Request/response RPC over the child_process IPC channel between the peers suite and its two
// workers (server, clients). Every call has a timeout; a worker exits when its parent goes away.
export function serve(handlers) {
  process.on('message', async (msg) => {
    if (!msg || msg.id === undefined) return;
    try {
      const fn = handlers[msg.cmd];
      if (!fn) throw new Error(`unknown command ${msg.cmd}`);
      const result = await fn(msg.args || {});
      process.send({ id: msg.id, ok: true, result });
    } catch (e) {
      process.send({ id: msg.id, ok: false, error: String(e?.stack || e) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}

export function rpc(child, label) {
  let next = 1;
  const pending = new Map();
  child.on('message', (m) => {
    const p = m && pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    m.ok ? p.resolve(m.result) : p.reject(new Error(`${label}: ${m.error}`));
  });
  child.on('exit', (code, sig) => {
    for (const p of pending.values()) p.reject(new Error(`${label} exited (${code ?? sig})`));
    pending.clear();
  });
  return (cmd, args = {}, timeoutMs = 60000) =>
    new Promise((resolve, reject) => {
      const id = next++;
      const t = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${label}: rpc ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (v) => {
          clearTimeout(t);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      try {
        child.send({ id, cmd, args });
      } catch (e) {
        pending.delete(id);
        clearTimeout(t);
        reject(e);
      }
    });
}
