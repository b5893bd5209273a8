/** Counters of a store's traffic, for progress and benchmarks. */
export interface StoreStats {
  /** Requests made (HTTP requests, or file reads for a directory). */
  requests: number;
  /** Bytes received. */
  bytesReceived: number;
  /** Bytes sent (uploads). */
  bytesSent: number;
}

/** Options for one read. */
export interface ReadOptions {
  /** Refuse objects larger than this (metadata has known bounds). */
  maxBytes?: number;
  signal?: AbortSignal;
  /**
   * For {@link RepoStore.getRange}: a buffer of at least `length` bytes to read into, so a
   * caller can reuse its memory; the result is then a view of it. Stores may ignore it.
   */
  into?: Uint8Array;
}

/**
 * Where a repository's files live: a local directory, any static HTTP server or CDN, or an
 * S3-compatible bucket. Paths are relative, with forward slashes (`packs/ab/ab12....pack`).
 */
export interface RepoStore {
  /** A URL or path, for messages. */
  readonly location: string;
  /**
   * True when {@link RepoStore.getRange} is cheap (byte ranges are served). When false, the
   * client reads whole pack objects and takes the chunks it needs from them.
   */
  readonly ranges: boolean;
  /** Reads a whole object; null when it does not exist. */
  get(path: string, options?: ReadOptions): Promise<Buffer | null>;
  /** Reads `length` bytes of an object from `offset`. */
  getRange(path: string, offset: number, length: number, options?: ReadOptions): Promise<Buffer>;
  /** True when the object exists. */
  has(path: string): Promise<boolean>;
  /** Writes an object; readers see the old object or the new one, never a part. Absent on read-only stores. */
  put?(path: string, data: Uint8Array): Promise<void>;
  /** Traffic so far. */
  stats(): StoreStats;
  /** Releases connections. */
  close?(): void;
}

/** For stores: a view of the first `length` bytes of `into`, when it is large enough. */
export function intoBuffer(into: Uint8Array | undefined, length: number): Buffer | undefined {
  return into && into.byteLength >= length ? Buffer.from(into.buffer, into.byteOffset, length) : undefined;
}
