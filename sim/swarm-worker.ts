/** A piscina worker of the swarm (sim/swarm.ts): runs one seed per task, as inline. */
import { runSeedTask } from './swarm.ts';

export default runSeedTask;
