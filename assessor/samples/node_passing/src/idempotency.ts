import { createHash } from "node:crypto";

import { conflict } from "./errors.js";

/** What an idempotency store keeps: the request's fingerprint and the response first given for it. */
export interface Remembered {
  fingerprint: string;
  status: number;
  body: unknown;
}

export interface IdempotencyStore {
  /** Claims `key` for a new request; false when another request already holds it. */
  claim(key: string, ttlSeconds: number): Promise<boolean>;
  remember(key: string, value: Remembered, ttlSeconds: number): Promise<void>;
  recall(key: string): Promise<Remembered | undefined>;
}

export function fingerprint(body: unknown): string {
  return createHash("sha256").update(JSON.stringify(body ?? null)).digest("hex");
}

/** Runs `work` once per idempotency key: a repeat with the same body gets the first response again. */
export async function once(
  store: IdempotencyStore,
  key: string,
  body: unknown,
  work: () => Promise<{ status: number; body: unknown }>,
  ttlSeconds = 86400,
): Promise<{ status: number; body: unknown; replayed: boolean }> {
  const print = fingerprint(body);
  const earlier = await store.recall(key);
  if (earlier) {
    if (earlier.fingerprint !== print) {
      throw conflict("this idempotency key was used with a different request");
    }
    return { status: earlier.status, body: earlier.body, replayed: true };
  }
  if (!(await store.claim(key, ttlSeconds))) {
    throw conflict("a request with this idempotency key is still in progress");
  }
  const result = await work();
  await store.remember(key, { fingerprint: print, ...result }, ttlSeconds);
  return { ...result, replayed: false };
}

/** The store for one process: enough for tests and for a single instance. */
export class MemoryStore implements IdempotencyStore {
  private readonly claims = new Set<string>();
  private readonly values = new Map<string, Remembered>();

  async claim(key: string): Promise<boolean> {
    if (this.claims.has(key)) {
      return false;
    }
    this.claims.add(key);
    return true;
  }

  async remember(key: string, value: Remembered): Promise<void> {
    this.values.set(key, value);
  }

  async recall(key: string): Promise<Remembered | undefined> {
    return this.values.get(key);
  }
}

/** The store every instance shares: SET NX claims a key atomically, so two instances never both do the work. */
export class RedisStore implements IdempotencyStore {
  constructor(private readonly client: RedisLike, private readonly prefix = "idem:") {}

  async claim(key: string, ttlSeconds: number): Promise<boolean> {
    const answer = await this.client.set(`${this.prefix}claim:${key}`, "1", { NX: true, EX: ttlSeconds });
    return answer === "OK";
  }

  async remember(key: string, value: Remembered, ttlSeconds: number): Promise<void> {
    await this.client.set(`${this.prefix}value:${key}`, JSON.stringify(value), { EX: ttlSeconds });
  }

  async recall(key: string): Promise<Remembered | undefined> {
    const text = await this.client.get(`${this.prefix}value:${key}`);
    return text ? (JSON.parse(text) as Remembered) : undefined;
  }
}

export interface RedisLike {
  set(key: string, value: string, options: { NX?: boolean; EX: number }): Promise<string | null>;
  get(key: string): Promise<string | null>;
}
