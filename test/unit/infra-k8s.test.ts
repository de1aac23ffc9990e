/**
 * infra/k8s/: every manifest (multi-document YAML) parses and carries the essentials — cpu and gpu
 * worker Deployments configured by ConfigMap + Secret via envFrom, one GPU per gpu pod, a grace
 * period that outlasts the SIGTERM checkpoint + upload with a preStop that drives it, PDBs that
 * select real pods, the spot-pool note. With kubectl installed, `kubectl kustomize` builds it.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { trainerKillGraceMs } from '../../src/common/shutdown';
import { REPO } from '../helpers/fixtures';
import { gpuShutdownForceSeconds, knownEnvVars, quantityBytes, studyRunNeeds } from './infra-shared';

const DIR = join(REPO, 'infra', 'k8s');

/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes objects, checked field by field below */
type Obj = { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: any };

const files = readdirSync(DIR)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();
const docs: Array<Obj & { file: string }> = files.flatMap((file) => {
  const parsed = parseAllDocuments(readFileSync(join(DIR, file), 'utf8'));
  const list = Array.isArray(parsed) ? parsed : [parsed];
  return list
    .map((d) => {
      assert.equal(d.errors.length, 0, `${file}: ${d.errors.map((e) => e.message).join('; ')}`);
      return { ...(d.toJS() as Obj), file };
    })
    .filter((o) => o.kind);
});
const ofKind = (kind: string) => docs.filter((d) => d.kind === kind);
const deployments = ofKind('Deployment');
const container = (d: Obj) => d.spec.template.spec.containers[0];
const envOf = (d: Obj) =>
  Object.fromEntries((container(d).env ?? []).map((e: { name: string; value: string }) => [e.name, e.value])) as Record<
    string,
    string
  >;
const byQueue = (q: string) => deployments.find((d) => envOf(d).PEFTGRID_QUEUES === q)!;
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('infra/k8s manifests', () => {
  it('every document is a named Kubernetes object, and kustomization.yaml lists every manifest but the example Secret', () => {
    assert.ok(docs.length >= 7);
    for (const d of docs.filter((x) => x.kind !== 'Kustomization')) {
      assert.ok(d.apiVersion && d.metadata?.name, `${d.file}: ${d.kind} without apiVersion/name`);
    }
    const kust = docs.find((d) => d.kind === 'Kustomization')!;
    const manifests = files.filter((f) => f !== 'kustomization.yaml' && f !== 'secret.example.yaml');
    assert.deepEqual([...kust.resources].sort(), manifests);
  });

  it('has a cpu and a gpu worker Deployment whose selectors match their pods', () => {
    assert.ok(byQueue('cpu'), 'cpu worker (PEFTGRID_QUEUES=cpu)');
    assert.ok(byQueue('gpu'), 'gpu worker (PEFTGRID_QUEUES=gpu)');
    for (const d of deployments)
      assert.ok(matches(d.spec.selector.matchLabels, d.spec.template.metadata.labels), d.metadata.name);
  });

  it('configures workers by environment: ConfigMap + Secret via envFrom, only variables the code reads', () => {
    const known = knownEnvVars();
    const config = ofKind('ConfigMap').find((c) => c.metadata.name === 'peftgrid-config')!;
    const secrets = ofKind('Secret');
    const creds = secrets.find((s) => s.metadata.name === 'peftgrid-credentials')!;
    assert.ok(creds, 'secret.example.yaml defines peftgrid-credentials');
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'])
      assert.ok(k in creds.stringData, `${k} in the Secret`);
    for (const k of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'PEFTGRID_DATA_DIR'])
      assert.ok(config.data[k], `${k} in the ConfigMap`);
    for (const k of [...Object.keys(config.data), ...Object.keys(creds.stringData)])
      assert.ok(known.has(k), `${k} is read by nothing (typo?)`);
    for (const d of deployments) {
      const from = container(d).envFrom as Array<{ secretRef?: { name: string }; configMapRef?: { name: string } }>;
      assert.ok(
        from.some((f) => f.secretRef?.name === 'peftgrid-credentials'),
        `${d.metadata.name}: credentials via envFrom`,
      );
      assert.ok(
        from.some((f) => f.configMapRef?.name === 'peftgrid-config'),
        `${d.metadata.name}: config via envFrom`,
      );
      for (const k of Object.keys(envOf(d))) assert.ok(known.has(k), `${d.metadata.name}: ${k} is read by nothing`);
      assert.ok(!JSON.stringify(container(d).env ?? []).includes('SECRET'), 'no credential inline in a Deployment');
      // The TLS pair is optional: a cluster without mTLS must still schedule the pod.
      const tls = d.spec.template.spec.volumes.find((v: any) => v.secret?.secretName === 'peftgrid-temporal-tls');
      assert.equal(tls?.secret.optional, true);
    }
  });

  it('gives each gpu pod one GPU and one training slot; cpu pods none', () => {
    const gpu = byQueue('gpu');
    const res = container(gpu).resources;
    assert.equal(Number(res.limits['nvidia.com/gpu']), 1);
    assert.equal(envOf(gpu).PEFTGRID_GPU_SLOTS, '1');
    assert.ok(gpu.spec.template.spec.tolerations.some((t: any) => t.key === 'nvidia.com/gpu'));
    assert.equal(container(byQueue('cpu')).resources?.limits?.['nvidia.com/gpu'], undefined);
  });

  it('sizes the gpu pod for a 7B study run (host memory, scratch) from the estimate in trainer/resources.py', () => {
    const need = studyRunNeeds();
    const gpu = byQueue('gpu');
    const { requests, limits } = container(gpu).resources;
    const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
    assert.ok(quantityBytes(requests.memory) >= need.hostBytes, `memory request < ${gib(need.hostBytes)}`);
    assert.ok(quantityBytes(limits.memory) >= quantityBytes(requests.memory));
    const scratch = gpu.spec.template.spec.volumes.find((v: any) => v.name === 'scratch').emptyDir.sizeLimit;
    // One run's scratch, plus room for the model cache of the study's other models.
    assert.ok(quantityBytes(scratch) >= 2 * need.scratchBytes, `scratch ${scratch} < 2 × ${gib(need.scratchBytes)}`);
    assert.ok(quantityBytes(requests['ephemeral-storage']) >= need.scratchBytes, 'ephemeral-storage requested');
    assert.ok(quantityBytes(limits['ephemeral-storage']) >= quantityBytes(scratch), 'the scratch fits the limit');
    // The shared memory of data loaders stays within the pod's memory limit.
    const shm = gpu.spec.template.spec.volumes.find((v: any) => v.name === 'dshm').emptyDir.sizeLimit;
    assert.ok(quantityBytes(shm) + need.hostBytes <= quantityBytes(limits.memory));
    // The cpu worker can hold an ONNX evaluation of a 7B export (4 bytes per parameter as float32).
    const cpu = container(byQueue('cpu')).resources;
    assert.ok(quantityBytes(cpu.limits.memory) >= need.hostBytes, 'cpu memory limit fits a 7B ONNX evaluation');
  });

  it('gives the gpu worker time to checkpoint and upload on termination, driven by a preStop', () => {
    const gpu = byQueue('gpu');
    const grace = gpu.spec.template.spec.terminationGracePeriodSeconds as number;
    // The worker's shutdown time as this pod would see it: the default, or an override by env.
    const config = ofKind('ConfigMap').find((c) => c.metadata.name === 'peftgrid-config')!;
    const force = gpuShutdownForceSeconds({ ...config.data, ...envOf(gpu) });
    // Derived, not merely "long enough": preStop start-up + the worker's shutdown + a margin for
    // the kubelet, and not so much more that a stuck pod holds its GPU for minutes for nothing.
    assert.ok(grace >= force + 30, `terminationGracePeriodSeconds ${grace} < worker shutdown ${force} s + 30 s margin`);
    assert.ok(
      grace <= force + 90,
      `terminationGracePeriodSeconds ${grace} > worker shutdown ${force} s + 90 s: update it with the setting`,
    );
    const trainerGrace = trainerKillGraceMs(force * 1000) / 1000;
    assert.ok(
      trainerGrace > 0 && force - trainerGrace >= force / 3,
      `trainer SIGKILL grace ${trainerGrace} s leaves the upload a third of ${force} s`,
    );
    const preStop = container(gpu).lifecycle.preStop.exec.command.join(' ');
    assert.match(preStop, /kill -TERM 1/, "preStop starts the worker's SIGTERM shutdown");
    assert.match(preStop, /while kill -0 1/, 'preStop waits for the worker to exit');
    // A surge pod would wait for a GPU; an unavailable-0 rollout would never free one.
    assert.equal(gpu.spec.strategy.rollingUpdate.maxSurge, 0);
  });

  it("has a PodDisruptionBudget selecting each worker Deployment's pods", () => {
    const pdbs = ofKind('PodDisruptionBudget');
    for (const d of deployments) {
      const pdb = pdbs.find((p) => matches(p.spec.selector.matchLabels, d.spec.template.metadata.labels));
      assert.ok(pdb, `no PDB for ${d.metadata.name}`);
      assert.ok(pdb.spec.minAvailable !== undefined || pdb.spec.maxUnavailable !== undefined);
    }
  });

  it('documents spot / preemptible GPU node pools next to the gpu worker', () => {
    const text = readFileSync(join(DIR, byQueue('gpu').file), 'utf8');
    assert.match(text, /spot/i);
    assert.match(text, /nodeSelector/);
    assert.match(text, /tolerations/);
  });

  const kubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;
  it('builds with `kubectl kustomize`', { skip: kubectl ? false : 'kubectl not installed' }, () => {
    const res = spawnSync('kubectl', ['kustomize', DIR], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.equal((res.stdout.match(/^kind: Deployment$/gm) ?? []).length, 2);
  });
});
