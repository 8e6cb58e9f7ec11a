/**
 * Bounded mailboxes: nact's mailbox is unbounded, so every external request goes through a
 * counter; past the bound the caller gets a `busy` error ("retry") instead of growing memory.
 */
import { dispatch, type Ref } from 'nact';
import { FsmeshError } from '../core/errors.ts';
import type { Replyable } from './supervision.ts';

/** Omit that distributes over a union of message types. */
export type MsgWithoutReply<M> = M extends unknown ? Omit<M, 'reply'> : never;

export class BoundedRef<M extends Replyable> {
  readonly name: string;
  readonly bound: number;
  ref: Ref<M> | null = null;
  inflight = 0;
  rejected = 0;
  /** Set when the supervisor gave up on the actor: every ask fails fast from then on. */
  stopped_reason: string | null = null;
  private readonly pending = new Set<(err: Error) => void>();
  constructor(name: string, bound: number) {
    this.name = name;
    this.bound = bound;
  }

  /** Send a request and await its reply; rejects with `busy` when the mailbox is full. */
  ask<T>(msg: MsgWithoutReply<M>): Promise<T> {
    if (this.stopped_reason !== null)
      return Promise.reject(
        new FsmeshError('unavailable', `${this.name} actor is stopped: ${this.stopped_reason}`),
      );
    if (!this.ref)
      return Promise.reject(
        new FsmeshError('busy', `${this.name} actor is not running (restarting or stopped); retry`),
      );
    if (this.inflight >= this.bound) {
      this.rejected++;
      return Promise.reject(
        new FsmeshError(
          'busy',
          `${this.name} is busy (${this.inflight} requests in flight, bound ${this.bound}); retry`,
        ),
      );
    }
    this.inflight++;
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const reply: NonNullable<Replyable['reply']> = (r) => {
        if (done) return;
        done = true;
        this.inflight--;
        this.pending.delete(fail);
        if (r.ok) resolve(r.value as T);
        else reject(r.error);
      };
      const fail = (error: Error) => reply({ ok: false, error });
      this.pending.add(fail);
      dispatch(this.ref!, { ...msg, reply } as unknown as M);
    });
  }

  /**
   * The supervisor gave up on the actor: drop the ref and fail every request still waiting for it
   * (nact drops a stopped actor's mailbox, so their replies would never come).
   */
  stop(reason: string): void {
    this.stopped_reason = reason;
    this.ref = null;
    const err = new FsmeshError('unavailable', `${this.name} actor is stopped: ${reason}`);
    for (const fail of [...this.pending]) fail(err);
  }

  /** Fire and forget (internal notifications; not counted against the bound). */
  tell(msg: M): void {
    if (this.ref) dispatch(this.ref, msg);
  }
}
