#!/usr/bin/env node
// One-way UDP datagrams for the antispoofing and NAT tests: who does a datagram arrive from?
//
//   node udpprobe.mjs listen PORT                 IPv4 and IPv6 on PORT; prints "listening" once
//                                                 bound, then "from <source>: <payload>" for each
//                                                 datagram (IPv4 sources without ::ffff:)
//   node udpprobe.mjs send SRC DST PORT PAYLOAD   one datagram from SRC (an address the sender
//                                                 has) to DST:PORT; exit 0 once it is sent
import dgram from 'node:dgram';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'listen') {
  const sock = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  sock.on('message', (msg, rinfo) => {
    console.log(`from ${rinfo.address.replace(/^::ffff:/, '')}: ${msg.toString('utf8')}`);
  });
  sock.bind(Number(args[0]), '::', () => console.log('listening'));
} else if (mode === 'send') {
  const [src, dst, port, payload] = args;
  const sock = dgram.createSocket(src.includes(':') ? 'udp6' : 'udp4');
  sock.bind(0, src, () => {
    sock.send(payload ?? '', Number(port), dst, (err) => {
      if (err) {
        console.error(`send: ${err.message}`);
        process.exit(1);
      }
      sock.close();
    });
  });
  sock.on('error', (err) => {
    console.error(`send: ${err.message}`);
    process.exit(1);
  });
} else {
  console.error('usage: udpprobe.mjs listen PORT | send SRC DST PORT PAYLOAD');
  process.exit(2);
}
