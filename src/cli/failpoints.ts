/**
 * Failpoints for chaos testing real processes (docs/runbook.md, "Failpoints"): the environment
 * variable FSMESH_FAILPOINTS makes activations fail on purpose, the way a damaged disk or a bad
 * build would, so that routing, degraded mode and repair can be exercised end to end.
 *
 *   FSMESH_FAILPOINTS="activation.warm=always@1"   first activation passes, every later one fails
 *   FSMESH_FAILPOINTS="activation.verify=3"        the next 3 activations fail at verification
 *
 * Grammar: `activation.STAGE=COUNT[@SKIP]`, STAGE one of verify|warm|flip, COUNT `always` or a
 * positive integer, SKIP the number of activations that pass first. Entries are separated by `;`
 * (one activation failpoint is active at a time, so at most one entry today).
 */
import type { GateStage } from '../engine/activation-gate.ts';
import { UsageError } from './args.ts';

export interface ActivationFailpoint {
  stage: GateStage;
  times: number;
  skip: number;
}

const ENTRY = /^activation\.(verify|warm|flip)=(always|[1-9][0-9]{0,8})(?:@([0-9]{1,9}))?$/;

export function parseFailpoints(spec: string | undefined): ActivationFailpoint | null {
  if (spec === undefined || spec.trim() === '') return null;
  const entries = spec
    .split(';')
    .map((e) => e.trim())
    .filter(Boolean);
  if (entries.length > 1)
    throw new UsageError(`FSMESH_FAILPOINTS: one activation failpoint at a time, got ${entries.length}`);
  const m = ENTRY.exec(entries[0]);
  if (!m)
    throw new UsageError(
      `FSMESH_FAILPOINTS: ${JSON.stringify(entries[0])} is not activation.{verify|warm|flip}=always|N[@SKIP]`,
    );
  return {
    stage: m[1] as GateStage,
    times: m[2] === 'always' ? Number.POSITIVE_INFINITY : Number(m[2]),
    skip: m[3] === undefined ? 0 : Number(m[3]),
  };
}
