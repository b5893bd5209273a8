// @tandem/core/guest: the guest-agent protocol, both of its ends, and first-time setup.
// Loads zod and Node.js built-ins only, so the guest agent can import it inside the guest.

export {
  AGENT_CHANNEL_NAME,
  PROTOCOL_VERSIONS,
  DEFAULT_MAX_MESSAGE_BYTES,
  MAX_ICON_BYTES,
  GUEST_CAPABILITIES,
  SETUP_STEPS,
  METHODS,
  GUEST_EVENTS,
  isGuestCapability,
  negotiateProtocol,
  MessageSchema,
  HelloSchema,
  RequestSchema,
  ReplySchema,
  GuestInfoSchema,
  GuestAppSchema,
  GuestAppsSchema,
  ComputerNameSchema,
  DnsNameSchema,
  GuestNetworkSettingsSchema,
  SetupStepParamsSchema,
  SetupStepResultSchema,
  SetupStatusSchema,
  OpenUrlParamsSchema,
  ExecParamsSchema,
  ExecResultSchema,
  RDP_POLICY_VALUES,
  RdpPolicyParamsSchema,
  RdpPolicyResultSchema,
  UrlToHostEventSchema,
  SignInParamsSchema,
  SignInResultSchema,
} from './protocol.js';
export type {
  GuestCapability,
  GuestMethod,
  MethodParams,
  MethodResult,
  Message,
  Hello,
  RequestMessage,
  ReplyMessage,
  ProtocolErrorMessage,
  WireError,
  GuestInfo,
  GuestApp,
  SetupStepName,
  GuestNetworkSettings,
  SetupStepParams,
  SetupStepResult,
  SetupStatus,
  ExecResult,
  SignInParams,
  SignInResult,
} from './protocol.js';
export { FRAME_START, FrameDecoder, encodeFrame } from './framing.js';
export type { DecodedItem } from './framing.js';
export { MessageStream } from './message-stream.js';
export type { MessageStreamHandlers } from './message-stream.js';
export { AgentUnreachableError, CapabilityMissingError, GuestProtocolError, GuestOperationError } from './errors.js';
export { AgentEndpoint, toWireError } from './agent-endpoint.js';
export type { AgentEndpointOptions, AgentHandlers, AgentMethodHandler } from './agent-endpoint.js';
export { GuestConnection } from './connection.js';
export type {
  GuestConnectionOptions,
  GuestConnectionState,
  GuestRequestOptions,
  GuestEventPublisher,
  AgentDescription,
  UrlPolicy,
} from './connection.js';
export { checkComputerNameTemplate, renderComputerName, NETBIOS_MAX, HOSTNAME_MAX } from './computer-name.js';
export type { ComputerNameCheck, ComputerNameVariables, ComputerNamePlaceholder } from './computer-name.js';
export { SetupRecordStore, localCredentials, runFirstTimeSetup } from './setup.js';
export type {
  SetupRecord,
  SetupCredential,
  CredentialResolver,
  FirstTimeSetupOptions,
  FirstTimeSetupResult,
} from './setup.js';
export { signInToGuest } from './sign-in.js';
export type { GuestSignInOptions } from './sign-in.js';
