#!/usr/bin/env node
// A long-lived TCP connection for the reachability tests.
//
//   node tcpecho.mjs server ADDR PORT     echo server; prints "listening" once bound
//   node tcpecho.mjs client ADDR PORT     one connection: prints "connected <local port>", then for
//                                         each line on stdin sends it and prints "echo: <line>"
//                                         when it comes back (5 s each, else exit 1); any socket
//                                         error or close by the peer prints "error: ..." and exits 1;
//                                         end of stdin closes the connection and exits 0.
import net from 'node:net';
import readline from 'node:readline';

const [mode, addr, portText] = process.argv.slice(2);
const port = Number(portText);

if (mode === 'server') {
  const srv = net.createServer((sock) => {
    sock.on('error', () => {});
    sock.pipe(sock);
  });
  srv.listen(port, addr, () => console.log('listening'));
} else if (mode === 'client') {
  const sock = net.connect({ host: addr, port });
  let buf = '';
  const waiting = [];
  let ended = false;
  const die = (msg) => {
    console.log(`error: ${msg}`);
    process.exit(1);
  };
  sock.setEncoding('utf8');
  sock.on('error', (e) => die(e.message));
  sock.on('close', () => {
    if (!ended) die('connection closed by the peer');
  });
  sock.on('data', (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const w = waiting.shift();
      if (w) {
        clearTimeout(w.timer);
        console.log(`echo: ${line}`);
        w.resolve();
      }
    }
  });
  sock.on('connect', async () => {
    console.log(`connected ${sock.localPort}`);
    const rl = readline.createInterface({ input: process.stdin });
    for await (const line of rl) {
      await new Promise((resolve) => {
        const timer = setTimeout(() => die(`no echo of '${line}' within 5 s`), 5000);
        waiting.push({ resolve, timer });
        sock.write(`${line}\n`);
      });
    }
    ended = true;
    sock.end();
    console.log('done');
    process.exit(0);
  });
} else {
  console.error('usage: tcpecho.mjs server|client ADDR PORT');
  process.exit(2);
}
