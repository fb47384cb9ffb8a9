// molt's own structural checks of an Akash SDL 2.0 document (deploy.yaml), for
// the rules that @akashnetwork/chain-sdk's validateSDL lets through (env
// entries without '=', no global port, a bogus memory unit, a persistent
// volume without a class, a deployment of a service that does not exist) and
// the cross-references between services, profiles and deployment.
// Rules from Akash's SDL reference (shared reference/update.md section 3).
// Pure: a parsed document in, a list of one-line problems out.

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const SIZE = /^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)$/;
const CPU = /^\d+(\.\d+)?m?$/;
const ENV = /^[A-Za-z_][A-Za-z0-9_]*=/;
// uakt, uact, or an IBC denomination such as USDC's ibc/<64 hex>.
const DENOM = /^(uakt|uact|ibc\/[0-9A-F]{64})$/;
const STORAGE_CLASSES = new Set(['beta1', 'beta2', 'beta3', 'ram']);

interface Volume {
  name: string;
  size: unknown;
  persistent: boolean;
  cls?: unknown;
}

function volumesOf(storage: unknown, where: string, problems: string[]): Volume[] {
  const list = Array.isArray(storage) ? storage : storage === undefined ? [] : [storage];
  const out: Volume[] = [];
  list.forEach((v, i) => {
    if (!isObj(v)) return problems.push(`${where}[${i}] is not a mapping`);
    const name = typeof v.name === 'string' ? v.name : 'default';
    const attrs = isObj(v.attributes) ? v.attributes : {};
    out.push({ name, size: v.size, persistent: attrs.persistent === true || attrs.persistent === 'true', cls: attrs.class });
  });
  return out;
}

export function validateSdl(doc: unknown): string[] {
  const p: string[] = [];
  if (!isObj(doc)) return ['the document is not a mapping'];
  if (doc.version !== '2.0' && doc.version !== '2.1') p.push(`version must be the string "2.0" (or "2.1"), not ${JSON.stringify(doc.version)}`);

  const services = isObj(doc.services) ? doc.services : undefined;
  const profiles = isObj(doc.profiles) ? doc.profiles : undefined;
  const compute = profiles && isObj(profiles.compute) ? profiles.compute : undefined;
  const placement = profiles && isObj(profiles.placement) ? profiles.placement : undefined;
  const deployment = isObj(doc.deployment) ? doc.deployment : undefined;
  if (!services || Object.keys(services).length === 0) p.push('services: at least one service');
  if (!compute || Object.keys(compute).length === 0) p.push('profiles.compute: at least one compute profile');
  if (!placement || Object.keys(placement).length === 0) p.push('profiles.placement: at least one placement');
  if (!deployment) p.push('deployment: missing');
  if (!services || !compute || !placement || !deployment) return p;

  // Compute profiles: cpu, memory, storage volumes.
  const volumesByProfile = new Map<string, Volume[]>();
  for (const [name, prof] of Object.entries(compute)) {
    const where = `profiles.compute.${name}`;
    const res = isObj(prof) && isObj(prof.resources) ? prof.resources : undefined;
    if (!res) {
      p.push(`${where}.resources: missing`);
      continue;
    }
    const units = isObj(res.cpu) ? res.cpu.units : undefined;
    const cpuOk = (typeof units === 'number' && units > 0) || (typeof units === 'string' && CPU.test(units) && parseFloat(units) > 0);
    if (!cpuOk) p.push(`${where}.resources.cpu.units must be a positive number or millicores ("500m"), not ${JSON.stringify(units)}`);
    const mem = isObj(res.memory) ? res.memory.size : undefined;
    if (typeof mem !== 'string' || !SIZE.test(mem)) p.push(`${where}.resources.memory.size must be a size such as 512Mi, not ${JSON.stringify(mem)}`);
    const vols = volumesOf(res.storage, `${where}.resources.storage`, p);
    if (vols.length === 0) p.push(`${where}.resources.storage: at least one volume`);
    const seen = new Set<string>();
    for (const v of vols) {
      if (seen.has(v.name)) p.push(`${where}: storage volume ${v.name} is declared twice`);
      seen.add(v.name);
      if (typeof v.size !== 'string' || !SIZE.test(v.size)) p.push(`${where}: storage ${v.name} size must be a size such as 1Gi, not ${JSON.stringify(v.size)}`);
      if (v.persistent && (typeof v.cls !== 'string' || !STORAGE_CLASSES.has(v.cls) || v.cls === 'ram')) {
        p.push(`${where}: persistent storage ${v.name} needs attributes.class beta1, beta2 or beta3, not ${JSON.stringify(v.cls)}`);
      }
    }
    volumesByProfile.set(name, vols);
  }

  // Placements: pricing per profile.
  for (const [dc, pl] of Object.entries(placement)) {
    const pricing = isObj(pl) && isObj(pl.pricing) ? pl.pricing : undefined;
    if (!pricing) {
      p.push(`profiles.placement.${dc}.pricing: missing`);
      continue;
    }
    for (const [prof, price] of Object.entries(pricing)) {
      const where = `profiles.placement.${dc}.pricing.${prof}`;
      if (!Object.hasOwn(compute, prof)) p.push(`${where}: no compute profile ${prof}`);
      if (!isObj(price)) {
        p.push(`${where}: not a mapping`);
        continue;
      }
      if (typeof price.denom !== 'string' || !DENOM.test(price.denom)) p.push(`${where}.denom must be uakt or an IBC denom (USDC: ibc/<hash>), not ${JSON.stringify(price.denom)}`);
      if (typeof price.amount !== 'number' || !(price.amount > 0)) p.push(`${where}.amount must be a positive number, not ${JSON.stringify(price.amount)}`);
    }
  }

  // Deployment: service -> placement -> profile, all of which must exist.
  const profileOfService = new Map<string, string>();
  for (const [svc, byDc] of Object.entries(deployment)) {
    if (!Object.hasOwn(services, svc)) p.push(`deployment.${svc}: no service ${svc}`);
    if (!isObj(byDc) || Object.keys(byDc).length === 0) {
      p.push(`deployment.${svc}: needs a placement`);
      continue;
    }
    for (const [dc, d] of Object.entries(byDc)) {
      const where = `deployment.${svc}.${dc}`;
      if (!Object.hasOwn(placement, dc)) p.push(`${where}: no placement ${dc}`);
      if (!isObj(d)) {
        p.push(`${where}: not a mapping`);
        continue;
      }
      const prof = d.profile;
      if (typeof prof !== 'string' || !Object.hasOwn(compute, prof)) p.push(`${where}.profile: no compute profile ${JSON.stringify(prof)}`);
      else {
        profileOfService.set(svc, prof);
        const pl = placement[dc];
        if (isObj(pl) && isObj(pl.pricing) && !Object.hasOwn(pl.pricing, prof)) p.push(`${where}: placement ${dc} has no pricing for profile ${prof}`);
      }
      if (!Number.isInteger(d.count) || (d.count as number) < 1) p.push(`${where}.count must be a whole number >= 1, not ${JSON.stringify(d.count)}`);
    }
  }

  // Services: image, env, expose, storage mounts.
  let global = false;
  for (const [name, svc] of Object.entries(services)) {
    const where = `services.${name}`;
    if (!isObj(svc)) {
      p.push(`${where}: not a mapping`);
      continue;
    }
    if (!Object.hasOwn(deployment, name)) p.push(`${where}: not in deployment`);
    if (typeof svc.image !== 'string' || !svc.image.trim()) p.push(`${where}.image: missing`);
    else {
      const tag = /:([^/:@]+)$/.exec(svc.image)?.[1];
      if (!tag && !svc.image.includes('@sha256:')) p.push(`${where}.image ${svc.image}: pin a tag`);
      if (tag === 'latest') p.push(`${where}.image ${svc.image}: pin a version, not latest (providers cache images by name)`);
    }
    if (svc.env !== undefined) {
      if (!Array.isArray(svc.env)) p.push(`${where}.env must be a list of KEY=VALUE strings`);
      else
        svc.env.forEach((e, i) => {
          if (typeof e !== 'string' || !ENV.test(e)) p.push(`${where}.env[${i}] ${JSON.stringify(e)} is not KEY=VALUE`);
        });
    }
    const expose = Array.isArray(svc.expose) ? svc.expose : [];
    expose.forEach((x, i) => {
      const w = `${where}.expose[${i}]`;
      if (!isObj(x)) return p.push(`${w}: not a mapping`);
      const port = x.port;
      if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) p.push(`${w}.port must be 1-65535, not ${JSON.stringify(port)}`);
      if (x.as !== undefined && (!Number.isInteger(x.as) || (x.as as number) < 1 || (x.as as number) > 65535)) p.push(`${w}.as must be 1-65535`);
      if (x.proto !== undefined && !['tcp', 'udp', 'TCP', 'UDP'].includes(x.proto as string)) p.push(`${w}.proto must be tcp or udp`);
      for (const t of Array.isArray(x.to) ? x.to : []) {
        if (!isObj(t)) continue;
        if (t.global === true) global = true;
        if (t.service !== undefined && (typeof t.service !== 'string' || !Object.hasOwn(services, t.service))) p.push(`${w}.to: no service ${JSON.stringify(t.service)}`);
      }
    });
    const params = isObj(svc.params) ? svc.params : undefined;
    const mounts = params && isObj(params.storage) ? params.storage : {};
    const prof = profileOfService.get(name);
    const vols = prof ? (volumesByProfile.get(prof) ?? []) : [];
    for (const [vol, m] of Object.entries(mounts)) {
      const w = `${where}.params.storage.${vol}`;
      if (!vols.some((v) => v.name === vol)) p.push(`${w}: profile ${prof ?? '?'} has no storage volume ${vol}`);
      if (!isObj(m) || typeof m.mount !== 'string' || !m.mount.startsWith('/')) p.push(`${w}.mount must be an absolute path`);
    }
    for (const v of vols) if (v.persistent && !Object.hasOwn(mounts, v.name)) p.push(`${where}: persistent storage ${v.name} is not mounted (params.storage.${v.name}.mount)`);
  }
  if (!global) p.push('no service exposes a port to: [{global: true}]; nothing would be reachable');
  return p;
}
