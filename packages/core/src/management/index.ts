// @tandem/core/management: the management server's wire types (zod), request signing and the
// endpoint's ManagementClient. Named exports only.

export {
  API_PREFIX,
  ROUTES,
  MAX_REQUEST_BYTES,
  MAX_EVENTS_PER_REQUEST,
  DeviceKeysSchema,
  EnrollRequestSchema,
  EnrollReplySchema,
  SignInInfoSchema,
  SignInRequestSchema,
  SignInReplySchema,
  WireEventSchema,
  EndpointWorkspaceStateSchema,
  HeldEnvelopeSchema,
  CheckInRequestSchema,
  CheckInReplySchema,
  WireEnvelopeSchema,
  ProvisionedWorkspaceSchema,
  CredentialRevocationSchema,
  EventUploadRequestSchema,
  EventUploadReplySchema,
  EnvelopeRequestSchema,
  EnvelopeReplySchema,
  AssignmentsRequestSchema,
  AssignmentsReplySchema,
  ErrorReplySchema,
} from './wire.js';
export type {
  EnrollRequest,
  EnrollReply,
  SignInInfo,
  SignInRequest,
  SignInReply,
  WireEvent,
  CheckInRequest,
  CheckInReply,
  ProvisionedWorkspace,
  EventUploadReply,
  EnvelopeReply,
  AssignmentsReply,
  ErrorReply,
} from './wire.js';
export {
  REQUEST_WINDOW_MS,
  SIGNATURE_HEADERS,
  signingInput,
  newNonce,
  verifyDeviceSignature,
} from './request-signing.js';
export type { SignedParts } from './request-signing.js';
export { ManagementError } from './errors.js';
export { ManagementClient } from './client.js';
export type { ManagementClientOptions, CallOptions } from './client.js';
export { ManagementTransport, readManagementReply, DEFAULT_MANAGEMENT_TIMEOUT_MS } from './transport.js';
export type { ManagementTransportOptions, TransportRequest, TransportReply } from './transport.js';
