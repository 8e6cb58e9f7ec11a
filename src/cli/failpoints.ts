/**
 * Failpoints for chaos testing real processes (docs/runbook.md, "Failpoints"): the environment
 * variable FSMESH_FAILPOINTS makes activations fail on purpose, the way a damaged disk or a bad
 * build would, so that routing, degraded mode and repair can be exercised end to end.
 *
 *   FSMESH_FAILPOINTS="activation.warm=always@1"   first activation passes, every later one fails
 *   FSMESH_FAILPOINTS="activation.verify=3"        the next 3 activations fail at verification
 *
 *   FSMESH_FAILPOINTS="build.perturb=1@2"          the third build is perturbed (a planted
 *                                                   non-deterministic build, for audit tests)
 *
 * Grammar: `activation.STAGE=COUNT[@SKIP]`, STAGE one of verify|warm|flip, and
 * `build.perturb=COUNT[@SKIP]`; COUNT `always` or a positive integer, SKIP the number that pass
 * first. Entries are separated by `;`, at most one of each kind.
 */
import type { GateStage } from '../engine/activation-gate.ts';
import { UsageError } from './args.ts';

export interface ActivationFailpoint {
  stage: GateStage;
  times: number;
  skip: number;
}

const ENTRY = /^activation\.(verify|warm|flip)=(always|[1-9][0-9]{0,8})(?:@([0-9]{1,9}))?$/;
const BUILD_ENTRY = /^build\.perturb=(always|[1-9][0-9]{0,8})(?:@([0-9]{1,9}))?$/;

export interface Failpoints {
  activation: ActivationFailpoint | null;
  build_perturb: { times: number; skip: number } | null;
}

const count = (v: string) => (v === 'always' ? Number.POSITIVE_INFINITY : Number(v));

/** Every failpoint of FSMESH_FAILPOINTS; a malformed or repeated entry is a usage error naming it. */
export function parseFailpointSpec(spec: string | undefined): Failpoints {
  const out: Failpoints = { activation: null, build_perturb: null };
  if (spec === undefined || spec.trim() === '') return out;
  for (const entry of spec
    .split(';')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const a = ENTRY.exec(entry);
    const b = BUILD_ENTRY.exec(entry);
    if (a && !out.activation)
      out.activation = {
        stage: a[1] as GateStage,
        times: count(a[2]),
        skip: a[3] === undefined ? 0 : Number(a[3]),
      };
    else if (b && !out.build_perturb)
      out.build_perturb = { times: count(b[1]), skip: b[2] === undefined ? 0 : Number(b[2]) };
    else if (a || b)
      throw new UsageError(`FSMESH_FAILPOINTS: one activation failpoint at a time, and one build failpoint`);
    else
      throw new UsageError(
        `FSMESH_FAILPOINTS: ${JSON.stringify(entry)} is not activation.{verify|warm|flip}=always|N[@SKIP] or build.perturb=always|N[@SKIP]`,
      );
  }
  return out;
}

/** The activation failpoint alone (what most callers need). */
export function parseFailpoints(spec: string | undefined): ActivationFailpoint | null {
  return parseFailpointSpec(spec).activation;
}
