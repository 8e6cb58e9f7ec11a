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
  constructor(name: string, bound: number) {
    this.name = name;
    this.bound = bound;
  }

  /** Send a request and await its reply; rejects with `busy` when the mailbox is full. */
  ask<T>(msg: MsgWithoutReply<M>): Promise<T> {
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
        if (r.ok) resolve(r.value as T);
        else reject(r.error);
      };
      dispatch(this.ref!, { ...msg, reply } as unknown as M);
    });
  }

  /** Fire and forget (internal notifications; not counted against the bound). */
  tell(msg: M): void {
    if (this.ref) dispatch(this.ref, msg);
  }
}
