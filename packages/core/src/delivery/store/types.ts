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
