/**
 * Wire constants named as in the MySQL/MariaDB protocol documentation.
 * Capability bits: MySQL dev docs "Capabilities Flags"; MariaDB extended bits live in a separate 32-bit word.
 */

export const CLIENT_LONG_PASSWORD = 1 << 0 // MariaDB calls it CLIENT_MYSQL
export const CLIENT_FOUND_ROWS = 1 << 1
export const CLIENT_LONG_FLAG = 1 << 2
export const CLIENT_CONNECT_WITH_DB = 1 << 3
export const CLIENT_NO_SCHEMA = 1 << 4
export const CLIENT_COMPRESS = 1 << 5
export const CLIENT_ODBC = 1 << 6
export const CLIENT_LOCAL_FILES = 1 << 7
export const CLIENT_IGNORE_SPACE = 1 << 8
export const CLIENT_PROTOCOL_41 = 1 << 9
export const CLIENT_INTERACTIVE = 1 << 10
export const CLIENT_SSL = 1 << 11
export const CLIENT_IGNORE_SIGPIPE = 1 << 12
export const CLIENT_TRANSACTIONS = 1 << 13
export const CLIENT_SECURE_CONNECTION = 1 << 15
export const CLIENT_MULTI_STATEMENTS = 1 << 16
export const CLIENT_MULTI_RESULTS = 1 << 17
export const CLIENT_PS_MULTI_RESULTS = 1 << 18
export const CLIENT_PLUGIN_AUTH = 1 << 19
export const CLIENT_CONNECT_ATTRS = 1 << 20
export const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 1 << 21
export const CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS = 1 << 22
export const CLIENT_SESSION_TRACK = 1 << 23
export const CLIENT_DEPRECATE_EOF = 1 << 24
export const CLIENT_OPTIONAL_RESULTSET_METADATA = 1 << 25
export const CLIENT_ZSTD_COMPRESSION = 1 << 26
export const CLIENT_QUERY_ATTRIBUTES = 1 << 27
export const CLIENT_MULTI_FACTOR_AUTHENTICATION = 1 << 28
// Bits 30/31 are client-side options that servers never see set in a greeting.

/** Largest payload of one frame; a frame this size means "continued in the next frame". */
export const MAX_FRAME_PAYLOAD = 0xffffff
export const HEADER_LENGTH = 4
/** An SSLRequest is exactly the first 32 bytes of a HandshakeResponse41. */
export const SSL_REQUEST_LENGTH = 32

export const OK_HEADER = 0x00
export const AUTH_MORE_DATA_HEADER = 0x01
export const AUTH_SWITCH_HEADER = 0xfe
export const LOCAL_INFILE_HEADER = 0xfb
export const ERR_HEADER = 0xff

export const COM_CHANGE_USER = 0x11

/** caching_sha2_password AuthMoreData statuses (MySQL sql/auth/sha2_password.cc). */
export const CACHING_SHA2_FAST_AUTH_OK = 0x03
export const CACHING_SHA2_PERFORM_FULL_AUTH = 0x04
export const CACHING_SHA2_REQUEST_PUBLIC_KEY = 0x02
export const SHA256_REQUEST_PUBLIC_KEY = 0x01

/**
 * Client plugin name the gateway sends in a HandshakeResponse it builds itself. No server has a plugin of this
 * name, so the server answers with exactly one AuthSwitchRequest naming the account's real plugin
 * (verified on MariaDB 10.11, see shared/docs/mysql-protocol-notes.md §6.4).
 */
export const PROBE_PLUGIN_NAME = 'gw_probe'

/** Server error codes the gateway generates (MySQL/MariaDB server range; never the 2000-2999 client range). */
export const ER_CON_COUNT_ERROR = 1040
export const ER_HANDSHAKE_ERROR = 1043
export const ER_ACCESS_DENIED_ERROR = 1045
export const ER_UNKNOWN_ERROR = 1105
export const ER_NET_PACKET_TOO_LARGE = 1153
export const ER_NET_PACKETS_OUT_OF_ORDER = 1156
export const ER_NOT_SUPPORTED_AUTH_MODE = 1251
export const ER_SECURE_TRANSPORT_REQUIRED = 3159
