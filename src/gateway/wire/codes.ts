/**
 * Message type bytes of the PostgreSQL protocol (v3), by direction. One byte means different
 * messages each way — 0x44 'D' is Describe from the client and DataRow from the server, 0x43 'C'
 * Close and CommandComplete, 0x53 'S' Sync and ParameterStatus, 0x48 'H' Flush and
 * CopyOutResponse — so code reads them through the table of the direction it handles.
 */

/** Client → server. */
export const FRONTEND = {
  Bind: 0x42, // B
  Close: 0x43, // C
  Describe: 0x44, // D
  Execute: 0x45, // E
  FunctionCall: 0x46, // F
  Flush: 0x48, // H
  Parse: 0x50, // P
  Query: 0x51, // Q
  Sync: 0x53, // S
  Terminate: 0x58, // X
  CopyDone: 0x63, // c
  CopyData: 0x64, // d
  CopyFail: 0x66, // f
  PasswordMessage: 0x70, // p (also SASL responses)
} as const;

/** Server → client. */
export const BACKEND = {
  ParseComplete: 0x31, // 1
  BindComplete: 0x32, // 2
  CloseComplete: 0x33, // 3
  NotificationResponse: 0x41, // A
  CommandComplete: 0x43, // C
  DataRow: 0x44, // D
  ErrorResponse: 0x45, // E
  CopyInResponse: 0x47, // G
  CopyOutResponse: 0x48, // H
  EmptyQueryResponse: 0x49, // I
  BackendKeyData: 0x4b, // K
  NoticeResponse: 0x4e, // N
  Authentication: 0x52, // R
  ParameterStatus: 0x53, // S
  RowDescription: 0x54, // T
  NegotiateProtocolVersion: 0x76, // v
  CopyBothResponse: 0x57, // W
  ReadyForQuery: 0x5a, // Z
  CopyDone: 0x63, // c
  CopyData: 0x64, // d
  NoData: 0x6e, // n
  PortalSuspended: 0x73, // s
  ParameterDescription: 0x74, // t
} as const;

/** Field type bytes of ErrorResponse and NoticeResponse used by the gateway. */
export const ERROR_FIELD = {
  Hint: 0x48, // H
  Message: 0x4d, // M
} as const;
