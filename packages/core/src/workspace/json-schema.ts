import { z } from 'zod';
import { WorkspaceSchema } from './schema.js';

/** The workspace file's JSON Schema (draft 2020-12), for editors and other tools. */
export function workspaceJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(WorkspaceSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    ...schema,
    $id: 'https://tandem.dev/schemas/workspace-v1.json',
    title: 'Tandem workspace (tandem/v1)',
  };
}
