/**
 * lib/xenstore.ts as a command, for bats: `node --import tsx test/xenstored/xslib.ts OP ARG...`
 * prints one JSON line, {"ok":true,"result":…} or {"ok":false,"error":{…}} (exit 1).
 *
 *   read-dir PATH | read PATH | read-optional PATH | exists PATH
 *   read-via SOCKET PATH     read with XenstoreOptions.env = {XENSTORED_PATH: SOCKET}
 *   write PATH VALUE [PATH VALUE…] | rm PATH… | frontend BACKEND | tap IFNAME
 *   vif-online BACKEND MTU   what vif-bridge online does to xenstore: read the backend
 *                            directory, then write the frontend mtu and hotplug-status
 */
import * as xs from '../../lib/xenstore.ts';

async function main(op: string | undefined, args: string[]): Promise<unknown> {
  const one = () => {
    if (args[0] === undefined) throw new Error(`${op} needs a path`);
    return args[0];
  };
  switch (op) {
    case 'read-dir':
      return Object.fromEntries(await xs.readDir(one()));
    case 'read':
      return xs.read(one());
    case 'read-via':
      if (args[1] === undefined) throw new Error('read-via needs a socket and a path');
      return xs.read(args[1], { env: { XENSTORED_PATH: args[0] } });
    case 'read-optional':
      return (await xs.readOptional(one())) ?? null;
    case 'exists':
      return xs.exists(one());
    case 'write': {
      const pairs: Array<[string, string]> = [];
      for (let i = 0; i + 1 < args.length; i += 2) pairs.push([args[i]!, args[i + 1]!]);
      await xs.write(pairs);
      return null;
    }
    case 'rm':
      await xs.rm(args);
      return null;
    case 'frontend':
      return xs.frontendPathOf(one(), await xs.readDir(one()));
    case 'tap':
      return xs.tapBackendPath(one());
    case 'vif-online': {
      const backend = one();
      const dir = await xs.readDir(backend);
      const mtu = dir.get('mtu') ?? args[1] ?? '1500';
      await xs.write([
        [`${xs.frontendPathOf(backend, dir)}/mtu`, mtu],
        [`${backend}/hotplug-status`, 'connected'],
      ]);
      return Object.fromEntries(dir);
    }
    default:
      throw new Error(`unknown op ${op}`);
  }
}

try {
  const result = await main(process.argv[2], process.argv.slice(3));
  process.stdout.write(JSON.stringify({ ok: true, result }) + '\n');
} catch (e) {
  const err = e as Error & { reason?: string; path?: string; op?: string };
  process.stdout.write(JSON.stringify({ ok: false, error: { name: err.name, message: err.message, reason: err.reason, path: err.path, op: err.op } }) + '\n');
  process.exitCode = 1;
}
