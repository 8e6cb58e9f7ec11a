/**
 * Progress bars for long CLI work (ingest, bootstrap) — on a terminal only: piped or redirected
 * output stays the quiet JSON lines scripts read. One bar at a time, drawn on stderr (cli-progress).
 */
import { SingleBar } from 'cli-progress';

export interface Progress {
  update(done: number, total?: number, extra?: string): void;
  stop(): void;
}

const NONE: Progress = { update: () => {}, stop: () => {} };

export function ttyProgress(
  label: string,
  total: number,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  if (!stream.isTTY) return NONE;
  const bar = new SingleBar({
    stream,
    format: `${label} [{bar}] {value}/{total} {extra}`,
    hideCursor: true,
    clearOnComplete: false,
  });
  bar.start(total, 0, { extra: '' });
  return {
    update: (done, t, extra = '') => {
      if (t !== undefined) bar.setTotal(t);
      bar.update(done, { extra });
    },
    stop: () => bar.stop(),
  };
}
