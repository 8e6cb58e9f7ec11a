/** FSMESH_FAILPOINTS: the grammar, and clear refusals of anything else (a typo must not pass silently). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFailpointSpec, parseFailpoints } from '../../src/cli/failpoints.ts';

test('failpoints: parsed when well formed, refused by name otherwise', () => {
  assert.equal(parseFailpoints(undefined), null);
  assert.equal(parseFailpoints('  '), null);
  assert.deepEqual(parseFailpoints('activation.warm=always@1'), {
    stage: 'warm',
    times: Number.POSITIVE_INFINITY,
    skip: 1,
  });
  assert.deepEqual(parseFailpoints('activation.verify=3'), { stage: 'verify', times: 3, skip: 0 });
  for (const bad of ['activation.warm=0', 'activation.boot=1', 'warm=always', 'activation.flip=1@x'])
    assert.throws(() => parseFailpoints(bad), /FSMESH_FAILPOINTS: .* is not activation/, bad);
  assert.deepEqual(parseFailpointSpec('build.perturb=1@2; activation.flip=2'), {
    activation: { stage: 'flip', times: 2, skip: 0 },
    build_perturb: { times: 1, skip: 2 },
  });
  assert.throws(() => parseFailpointSpec('build.perturb=0'), /is not activation.* or build.perturb/);
  assert.throws(() => parseFailpoints('activation.warm=1;activation.flip=1'), /one activation failpoint/);
});
