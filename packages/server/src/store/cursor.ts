import { InvalidInputError } from '@tandem/core';

/** Where a page of events ended: the last event's time (ISO 8601, ms) and id. */
export interface EventCursor {
  readonly at: string;
  readonly id: string;
}

/** Encodes a cursor as opaque URL-safe text. */
export function encodeCursor(cursor: EventCursor): string {
  return Buffer.from(JSON.stringify([cursor.at, cursor.id]), 'utf8').toString('base64url');
}

/** Decodes {@link encodeCursor}'s text; throws InvalidInputError on anything else. */
export function decodeCursor(text: string): EventCursor {
  try {
    const value: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      typeof value[1] === 'string' &&
      !Number.isNaN(Date.parse(value[0]))
    ) {
      return { at: new Date(value[0]).toISOString(), id: value[1] };
    }
  } catch {
    // fall through to the typed error
  }
  throw new InvalidInputError('The event cursor is not one this server gave out; start again without `after`.', {
    details: { cursor: text },
  });
}
