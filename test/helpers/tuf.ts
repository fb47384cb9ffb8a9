// A test TUF repository for the keyless trust root (src/update/trust/tuf.ts):
// root, timestamp, snapshot and targets metadata signed with Ed25519 keys made
// with node:crypto, one target (a Sigstore trusted_root.json), served on
// loopback. Each publish() re-signs a new set of versions; the server can be
// made to serve old files, a target that is not the listed one, one longer
// than listed, or to stall, so the tests can play TUF's attacks against molt.
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

type Role = 'root' | 'timestamp' | 'snapshot' | 'targets';
const ROLES: Role[] = ['root', 'timestamp', 'snapshot', 'targets'];

/** TUF's canonical JSON for what the tests sign: sorted keys, no whitespace (ASCII strings, integers). */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const isoSeconds = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const DAY = 86_400_000;

interface Key {
  priv: KeyObject;
  id: string;
  json: { keytype: 'ed25519'; scheme: 'ed25519'; keyval: { public: string } };
}

function makeKey(): Key {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  // The raw 32-byte key is the tail of its SPKI DER.
  const raw = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
  const json = { keytype: 'ed25519' as const, scheme: 'ed25519' as const, keyval: { public: raw.toString('hex') } };
  return { priv: privateKey, id: createHash('sha256').update(canonical(json)).digest('hex'), json };
}

export interface PublishOpts {
  /** The target's bytes (default: the last published). */
  target?: Buffer;
  /** When the timestamp expires (default: a day from now); a past date plays a freeze. */
  timestampExpires?: Date;
  /** Versions (default: one more than the last publish, for each role but root). */
  timestampVersion?: number;
  snapshotVersion?: number;
  targetsVersion?: number;
}

export type Files = Map<string, Buffer>;

export class TestTufRepo {
  private readonly keys = Object.fromEntries(ROLES.map((r) => [r, makeKey()])) as Record<Role, Key>;
  private version = { timestamp: 0, snapshot: 0, targets: 0 };
  private target: Buffer;
  /** What the server serves, by URL path; tests may replace entries. */
  files: Files = new Map();
  /** Paths the server answers with headers and then nothing (slow retrieval). */
  readonly stall = new Set<string>();
  /** Every path asked for, in order. */
  readonly requests: string[] = [];
  private server: http.Server | undefined;
  private readonly sockets = new Set<import('node:net').Socket>();

  constructor(target: Buffer) {
    this.target = target;
    this.files.set('/1.root.json', this.signed('root', this.rootSigned()));
    this.publish();
  }

  /** The initial root.json (what MOLT_TRUST_TUF_ROOT names). */
  rootJson(): Buffer {
    return this.files.get('/1.root.json')!;
  }

  private rootSigned() {
    const keys = Object.fromEntries(ROLES.map((r) => [this.keys[r].id, this.keys[r].json]));
    const roles = Object.fromEntries(ROLES.map((r) => [r, { keyids: [this.keys[r].id], threshold: 1 }]));
    return { _type: 'root', spec_version: '1.0.31', version: 1, expires: isoSeconds(new Date(Date.now() + 365 * DAY)), consistent_snapshot: false, keys, roles };
  }

  private signed(role: Role, signed: Record<string, unknown>): Buffer {
    const sig = sign(null, Buffer.from(canonical(signed)), this.keys[role].priv).toString('hex');
    return Buffer.from(JSON.stringify({ signatures: [{ keyid: this.keys[role].id, sig }], signed }));
  }

  /** Sign a new set of timestamp/snapshot/targets and serve it (replacing the last). Returns the files served. */
  publish(o: PublishOpts = {}): Files {
    if (o.target) this.target = o.target;
    const v = {
      timestamp: o.timestampVersion ?? this.version.timestamp + 1,
      snapshot: o.snapshotVersion ?? this.version.snapshot + 1,
      targets: o.targetsVersion ?? this.version.targets + 1,
    };
    this.version = v;
    const expires = isoSeconds(new Date(Date.now() + DAY));
    const targets = this.signed('targets', {
      _type: 'targets', spec_version: '1.0.31', version: v.targets, expires,
      targets: { 'trusted_root.json': { length: this.target.length, hashes: { sha256: createHash('sha256').update(this.target).digest('hex') } } },
    });
    const snapshot = this.signed('snapshot', { _type: 'snapshot', spec_version: '1.0.31', version: v.snapshot, expires, meta: { 'targets.json': { version: v.targets } } });
    const timestamp = this.signed('timestamp', {
      _type: 'timestamp', spec_version: '1.0.31', version: v.timestamp, expires: isoSeconds(o.timestampExpires ?? new Date(Date.now() + DAY)),
      meta: { 'snapshot.json': { version: v.snapshot } },
    });
    this.files.set('/timestamp.json', timestamp);
    this.files.set('/snapshot.json', snapshot);
    this.files.set('/targets.json', targets);
    this.files.set('/targets/trusted_root.json', this.target);
    return new Map(this.files);
  }

  /** Serve on loopback (on `port`, or any free one); the URL is MOLT_TRUST_TUF_URL. */
  async serve(port = 0): Promise<string> {
    this.server = http.createServer((req, res) => {
      const p = new URL(req.url ?? '/', 'http://x').pathname;
      this.requests.push(p);
      if (this.stall.has(p)) {
        // Headers, then nothing: only the client's timeout ends this.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        return;
      }
      const body = this.files.get(p);
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server!.listen(port, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Stop serving (the repository becomes unreachable); open connections are cut. */
  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    for (const c of this.sockets) c.destroy();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
