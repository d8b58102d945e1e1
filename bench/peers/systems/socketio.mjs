// socket.io 4 with the HTTP long-polling transport only (server and client).
// Note: in Node, socket.io-client (engine.io-client) polls with xmlhttprequest-ssl and
// defaults to `agent: false`, i.e. every poll / POST opens a NEW TCP connection (no
// keep-alive, no pool limit). We keep that shipped default.
import http from 'node:http';
import { Server } from 'socket.io';
import { io as ioc } from 'socket.io-client';

export default {
  name: 'socket.io',
  packages: ['socket.io', 'socket.io-client'],
  async startServer(port) {
    const httpServer = http.createServer();
    const io = new Server(httpServer, { transports: ['polling'], serveClient: false });
    io.on('connection', (socket) => {
      socket.on('sub', (topics, ack) => {
        for (const t of topics) socket.join(t);
        if (typeof ack === 'function') ack();
      });
    });
    await new Promise((r) => httpServer.listen(port, '127.0.0.1', r));
    return {
      emit(topic, data) {
        io.to(topic).emit('m', topic, data);
      },
      stats() {
        let held = 0;
        for (const s of Object.values(io.engine.clients)) if (s.transport?.writable) held++;
        return { held, clients: io.engine.clientsCount };
      },
      close: () =>
        new Promise((r) => {
          httpServer.closeAllConnections();
          io.close(() => r());
        }),
    };
  },
  async startClient(url, topics, onMessage) {
    const socket = ioc(url, {
      transports: ['polling'],
      forceNew: true,
      reconnectionDelayMax: 1000,
    });
    socket.on('m', (topic, data) => onMessage(topic, data));
    await new Promise((resolve) => {
      socket.on('connect', () => socket.emit('sub', topics, resolve)); // re-subscribes on reconnect
    });
    return {
      close() {
        socket.close();
      },
    };
  },
};
