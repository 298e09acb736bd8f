// Helpers shared by the interop tests in Node and in the browser: nothing
// here imports a package or touches Node's or a browser's own APIs beyond
// timers, so a page can load this file as it is.

// Every wait is bounded so a broken gateway fails the test instead of hanging.
export const WAIT_MS = 10_000;
export const TEST_TIMEOUT_MS = 30_000;

// withTimeout rejects when p has not settled within ms, naming what it awaited.
export function withTimeout(p, what, ms = WAIT_MS) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// Inbox records the invocations of some targets on a connection; next()
// waits for the next one matching a predicate, skipping others of the target.
export class Inbox {
  constructor(conn, ...targets) {
    this.items = new Map(targets.map((t) => [t, []]));
    this.waiters = [];
    for (const target of targets) {
      conn.on(target, (...args) => {
        this.items.get(target).push(args);
        this.waiters = this.waiters.filter((w) => !w());
      });
    }
  }

  // next resolves with the arguments of the first unconsumed invocation of
  // target that satisfies pred, consuming it and everything of that target
  // before it.
  next(target, pred = () => true) {
    const take = () => {
      const list = this.items.get(target);
      const i = list.findIndex((args) => pred(...args));
      if (i < 0) return undefined;
      const [args] = list.splice(0, i + 1).slice(-1);
      return args;
    };
    return withTimeout(
      new Promise((resolve) => {
        const tryTake = () => {
          const args = take();
          if (args === undefined) return false;
          resolve(args);
          return true;
        };
        if (!tryTake()) this.waiters.push(tryTake);
      }),
      `${target} matching ${pred}`,
    );
  }

  // all returns every invocation of target received so far.
  all(target) {
    return [...this.items.get(target)];
  }
}

export const unique = (prefix) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
