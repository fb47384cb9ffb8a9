// A test Sigstore for end-to-end tests: a CA (openssl), a transparency log key,
// Fulcio-style leaf certificates and v0.3 DSSE bundles with a signed entry and
// inclusion proof, and the trusted_root.json that pins them. No network.
// Shared by the e2e updater tests and test/update/trust-sigstore.test.ts.
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const GHA = 'https://token.actions.githubusercontent.com';
/** The leaf certificates' identity (SAN URI) unless a test asks for another. */
export const WORKFLOW = 'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.0';

export interface LeafOpts {
  identity?: string;
  issuer?: string;
  /** '8': the issuer in 1.3.6.1.4.1.57264.1.8 (the default); '1': the older 1.3.6.1.4.1.57264.1.1. */
  issuerOid?: '1' | '8';
  /** The CA that issues the leaf (made with `ca(name)`); 'ca', the one the root lists, by default. */
  ca?: string;
}
export interface Leaf { key: KeyObject; cert: string }
export interface BundleOpts {
  leaf?: Leaf;
  subjects?: Array<{ name: string; sha256: string }>;
  integratedTime?: number;
  /** Signs the SET and checkpoint instead of the test log (a log the root does not list). */
  logKey?: KeyObject;
  tlog?: boolean;
  tamperPayload?: (p: Buffer) => Buffer;
}

export interface TestSigstore {
  /** A bundle for `subjects`, signed by a leaf certificate for `identity`. */
  bundle(subjects: Array<{ name: string; sha256: string }>, identity: string): string;
  /** A bundle with every part chosen by the test. */
  bundleWith(o: BundleOpts): string;
  /** A leaf certificate (and its key) for bundleWith. */
  leaf(opts?: LeafOpts): Leaf;
  /** Another CA under `dir`, one the trusted root does not list. */
  ca(name: string): void;
  /** The trusted root JSON (write it to a file for MOLT_TRUST_ROOT). */
  root(): unknown;
}

/** A test CA and log under `dir` (which must exist). */
export function testSigstore(dir: string): TestSigstore {
  const log = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  function sh(...args: string[]): void {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** A PEM certificate file's DER bytes. */
  const der = (pemFile: string): Buffer => Buffer.from(fs.readFileSync(path.join(dir, pemFile), 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const spki = (k: KeyObject): Buffer => k.export({ type: 'spki', format: 'der' });
  const logId = (k: KeyObject): Buffer => createHash('sha256').update(spki(k)).digest();

  function makeCa(name: string): void {
    sh('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
    sh('req', '-x509', '-new', '-key', `${name}.key`, '-subj', `/O=molt-test/CN=${name}`, '-days', '3650',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', `${name}.pem`);
  }

  let leafCount = 0;
  /** A Fulcio-style leaf: SAN URI, the OIDC issuer in extension .1.8 (DER UTF8String) or the old .1.1 (raw). */
  function makeLeaf(opts: LeafOpts = {}): Leaf {
    const n = `leaf${++leafCount}`;
    const issuer = opts.issuer ?? GHA;
    const issuerExt = opts.issuerOid === '1'
      ? `1.3.6.1.4.1.57264.1.1=DER:${Buffer.from(issuer).toString('hex')}`
      : `1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:${issuer}`;
    fs.writeFileSync(path.join(dir, `${n}.cnf`), [
      '[ext]', 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=codeSigning',
      `subjectAltName=critical,URI:${opts.identity ?? WORKFLOW}`, 'authorityKeyIdentifier=keyid', issuerExt, '',
    ].join('\n'));
    sh('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${n}.key`);
    sh('req', '-new', '-key', `${n}.key`, '-subj', '/CN=sigstore', '-out', `${n}.csr`);
    const ca = opts.ca ?? 'ca';
    sh('x509', '-req', '-in', `${n}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '1',
      '-extfile', `${n}.cnf`, '-extensions', 'ext', '-out', `${n}.pem`);
    return { key: createPrivateKey(fs.readFileSync(path.join(dir, `${n}.key`))), cert: `${n}.pem` };
  }

  const pae = (type: string, payload: Buffer): Buffer =>
    Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${payload.length} `), payload]);

  /**
   * The entry as the only leaf of the log: root = SHA-256(0x00 || body), and a
   * checkpoint (a signed note) over it, named for the log's base URL and signed
   * with a key hint of the log id's first 4 bytes, as Rekor writes them.
   */
  function inclusionProof(body: Buffer, key: KeyObject) {
    const root = createHash('sha256').update(Buffer.concat([Buffer.from([0]), body])).digest();
    const note = `log.molt.invalid\n1\n${root.toString('base64')}\n`;
    const sig = Buffer.concat([logId(log.publicKey).subarray(0, 4), sign('sha256', Buffer.from(note), key)]);
    return {
      logIndex: '0',
      rootHash: root.toString('base64'),
      treeSize: '1',
      hashes: [],
      checkpoint: { envelope: `${note}\n\u2014 log.molt.invalid ${sig.toString('base64')}\n` },
    };
  }

  /** A v0.3 DSSE bundle with one tlog entry, its SET and inclusion proof signed by the test log. */
  function makeBundle(o: BundleOpts): string {
    const leaf = o.leaf ?? makeLeaf();
    const statement = {
      _type: 'https://in-toto.io/Statement/v1',
      subject: (o.subjects ?? []).map((s) => ({ name: s.name, digest: { sha256: s.sha256 } })),
      predicateType: 'https://slsa.dev/provenance/v1',
      predicate: {},
    };
    const payload = Buffer.from(JSON.stringify(statement));
    const type = 'application/vnd.in-toto+json';
    const sig = sign('sha256', pae(type, payload), leaf.key);
    const signedPayload = o.tamperPayload ? o.tamperPayload(payload) : payload;
    const body = Buffer.from(JSON.stringify({
      apiVersion: '0.0.1',
      kind: 'dsse',
      spec: {
        payloadHash: { algorithm: 'sha256', value: createHash('sha256').update(signedPayload).digest('hex') },
        signatures: [{ signature: sig.toString('base64'), verifier: Buffer.from(fs.readFileSync(path.join(dir, leaf.cert))).toString('base64') }],
      },
    }));
    const integratedTime = o.integratedTime ?? Math.floor(Date.now() / 1000);
    const id = logId(log.publicKey);
    const set = `{"body":"${body.toString('base64')}","integratedTime":${integratedTime},"logID":"${id.toString('hex')}","logIndex":0}`;
    const entry = {
      logIndex: '0',
      logId: { keyId: id.toString('base64') },
      kindVersion: { kind: 'dsse', version: '0.0.1' },
      integratedTime: String(integratedTime),
      inclusionPromise: { signedEntryTimestamp: sign('sha256', Buffer.from(set), o.logKey ?? log.privateKey).toString('base64') },
      canonicalizedBody: body.toString('base64'),
      inclusionProof: inclusionProof(body, o.logKey ?? log.privateKey),
    };
    return JSON.stringify({
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: { certificate: { rawBytes: der(leaf.cert).toString('base64') }, tlogEntries: o.tlog === false ? [] : [entry], timestampVerificationData: {} },
      dsseEnvelope: { payload: signedPayload.toString('base64'), payloadType: type, signatures: [{ sig: sig.toString('base64'), keyid: '' }] },
    });
  }

  function trustedRoot(): unknown {
    return {
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [{
        baseUrl: 'https://log.molt.invalid',
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: spki(log.publicKey).toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start: '2000-01-01T00:00:00Z' } },
        logId: { keyId: logId(log.publicKey).toString('base64') },
      }],
      certificateAuthorities: [{
        subject: { organization: 'molt-test', commonName: 'ca' },
        uri: 'https://ca.molt.invalid',
        certChain: { certificates: [{ rawBytes: der('ca.pem').toString('base64') }] },
        validFor: { start: '2000-01-01T00:00:00Z' },
      }],
      ctlogs: [],
      timestampAuthorities: [],
    };
  }

  makeCa('ca');
  return {
    bundle: (subjects, identity) => makeBundle({ subjects, leaf: makeLeaf({ identity }) }),
    bundleWith: makeBundle,
    leaf: makeLeaf,
    ca: makeCa,
    root: trustedRoot,
  };
}
