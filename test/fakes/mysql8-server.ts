/**
 * A hand-written FAKE MySQL 8 server for tests. MariaDB has no caching_sha2_password or
 * sha256_password, yet the gateway must complete caching_sha2 full authentication (the RSA
 * exchange) on a plain backend leg, so this fake speaks MySQL 8.0.5+'s connection phase byte for
 * byte and really checks passwords. It deliberately imports nothing from src/: an independent
 * implementation is what catches bugs the gateway's codec would otherwise share with its test peer.
 *
 * Sources: MySQL dev docs (HandshakeV10, HandshakeResponse41, SSLRequest, AuthSwitchRequest,
 * AuthMoreData, OK/ERR/EOF, COM_CHANGE_USER); mysql/mysql-server sql/auth/sha2_password.cc and
 * sql/auth/sql_authentication.cc; /work/shared/docs/mysql-protocol-notes.md §1-§5.
 *
 * Loopback only. Events never contain passwords, auth responses, scrambles or key material.
 */
import { generateKeyPairSync } from 'node:crypto'
import net from 'node:net'
import tls from 'node:tls'
import { newScramble, runPlugin, type AuthEvent, type AuthPluginName, type FakeAccount, type PluginIo, type RsaKeys } from './fake-mysql8-auth.js'
import { handleCommand, type SessionView } from './fake-mysql8-commands.js'
import { CAP, MalformedPacketError, PacketChannel, PacketReadError, Reader, errPacket, okPacket } from './fake-mysql8-wire.js'
import { BASE_CAPS, accessDenied, authSwitch, greeting, parseHandshakeResponse } from './fake-mysql8-handshake.js'

/** Generous cap on one message: bounds memory if a peer sends a bogus length. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024

export type { AuthPluginName, FakeAccount } from './fake-mysql8-auth.js'

export interface FakeMysql8Options {
  accounts: FakeAccount[]
  /** Plugin named in the greeting (MySQL's default_authentication_plugin). */
  defaultPlugin?: AuthPluginName
  /** RSA modulus for the caching_sha2/sha256 key pair, generated per server. Default 2048. */
  rsaKeyBits?: number
  /** If given, CLIENT_SSL is advertised and SSLRequest upgrades; otherwise a plain-only backend. */
  tls?: { cert: string | Buffer; key: string | Buffer }
  /** Send the `01`+PEM AuthMoreData in several small delayed writes (tests packet reassembly). */
  splitPemWrites?: boolean
  /** Send caching_sha2's `01 03` and the OK in one write (default true), else two writes 20 ms apart. */
  oneReadFastAuth?: boolean
  serverVersion?: string
  /** Whole connection phase deadline, like MySQL's connect_timeout (default 10 s). */
  handshakeTimeoutMs?: number
  /** Command-phase idle limit before the fake hangs up (default 60 s). */
  idleTimeoutMs?: number
}

type ConnEvent =
  | { kind: 'connect' }
  | { kind: 'tls-upgrade' }
  | {
      kind: 'handshake-response'
      /** The client's capability flags exactly as sent. */
      caps: number
      user: string
      /** Plugin named by the client ('' if absent). */
      plugin: string
      database: string
      authLength: number
      tls: boolean
      attrs: Record<string, string>
    }
  | { kind: 'auth-ok'; user: string; plugin: AuthPluginName }
  | { kind: 'auth-fail'; user: string; plugin: AuthPluginName; reason: string }
  | { kind: 'command'; command: number }
  | { kind: 'change-user'; user: string; plugin: string }
  | { kind: 'protocol-error'; code: number; detail: string }
  | { kind: 'close' }

export type FakeMysql8Event = (AuthEvent | ConnEvent) & { connId: number }

export interface FakeMysql8 {
  host: '127.0.0.1'
  port: number
  /** The SPKI PEM this server hands out, for tests that pre-configure the key. */
  publicKeyPem: string
  events: FakeMysql8Event[]
  /** Connections currently open. */
  connections(): number
  /** Empties the caching_sha2 cache (like FLUSH PRIVILEGES): the next login needs full auth. */
  clearCache(): void
  close(): Promise<void>
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

interface ServerState {
  accounts: Map<string, FakeAccount>
  defaultPlugin: AuthPluginName
  version: string
  caps: number
  secureContext: tls.SecureContext | null
  keys: RsaKeys
  cache: Set<string>
  splitPemWrites: boolean
  oneReadFastAuth: boolean
  handshakeTimeoutMs: number
  idleTimeoutMs: number
  events: FakeMysql8Event[]
  nextConnId: number
  stats: { questions: number; startedAt: number }
}

/** One client connection: connection phase, then commands until QUIT/close/timeout. */
class FakeConnection {
  private readonly ch: PacketChannel
  private secure = false
  private clientCaps = 0
  private scramble: Buffer = newScramble()
  private deadline = 0
  private readonly session: SessionView

  constructor(
    private readonly srv: ServerState,
    private readonly raw: net.Socket,
    private readonly connId: number,
  ) {
    this.ch = new PacketChannel(raw, MAX_MESSAGE_BYTES)
    this.session = { user: '', database: '', serverVersion: srv.version, connectionId: connId, caps: 0 }
  }

  private record(ev: AuthEvent | ConnEvent): void {
    this.srv.events.push({ ...ev, connId: this.connId })
  }

  private left = (): number => Math.max(1, this.deadline - Date.now())

  async run(): Promise<void> {
    this.record({ kind: 'connect' })
    try {
      if (await this.connectionPhase()) await this.commandPhase()
    } catch (err) {
      this.onError(err)
    } finally {
      this.record({ kind: 'close' })
      this.ch.socket.end()
      // end() flushes the last ERR/OK; destroy soon after so a silent peer cannot pin the socket.
      setTimeout(() => this.raw.destroy(), 200).unref()
    }
  }

  private onError(err: unknown): void {
    if (err instanceof PacketReadError) {
      if (err.reason === 'out-of-order' && err.gotSeq !== undefined) {
        // Stamp the ERR as the reply to the packet the client did send, so strict clients show it.
        this.ch.setSeq(err.gotSeq + 1)
        this.protocolError(1156, '08S01', 'Got packets out of order', err.message)
      } else if (err.reason === 'too-large') {
        this.protocolError(1153, '08S01', "Got a packet bigger than 'max_allowed_packet' bytes", err.message)
      }
      // closed/timeout: MySQL just drops the connection.
      return
    }
    if (err instanceof MalformedPacketError) {
      this.protocolError(1043, '08S01', 'Bad handshake', err.message)
      return
    }
    this.record({ kind: 'protocol-error', code: 0, detail: err instanceof Error ? err.message : String(err) })
  }

  private protocolError(code: number, state: string, message: string, detail: string): void {
    this.record({ kind: 'protocol-error', code, detail })
    this.ch.send(errPacket(code, state, message))
  }

  /** Greeting, optional TLS upgrade, HandshakeResponse, auth. Returns true once OK was sent. */
  private async connectionPhase(): Promise<boolean> {
    this.deadline = Date.now() + this.srv.handshakeTimeoutMs
    const greetingScramble = this.scramble
    this.ch.send(greeting(this.srv.version, this.connId, greetingScramble, this.srv.caps, this.srv.defaultPlugin))

    let first = await this.ch.read(this.left())
    const wantsSsl = first.length >= 4 && (first.readUInt32LE(0) & CAP.SSL) !== 0
    if (first.length === 32 && wantsSsl && this.srv.secureContext) {
      await this.upgradeToTls(this.srv.secureContext)
      first = await this.ch.read(this.left())
    } else if (first.length <= 32 || wantsSsl) {
      // Too short for a HandshakeResponse, or SSL asked of a server that did not offer it / in plaintext.
      this.protocolError(1043, '08S01', 'Bad handshake', `first packet: ${first.length} bytes, CLIENT_SSL=${wantsSsl}`)
      return false
    }

    const hr = parseHandshakeResponse(first)
    this.clientCaps = hr.caps
    this.session.caps = hr.caps & this.srv.caps
    this.record({
      kind: 'handshake-response',
      caps: hr.caps,
      user: hr.user,
      plugin: hr.plugin,
      database: hr.database,
      authLength: hr.auth.length,
      tls: this.secure,
      attrs: hr.attrs,
    })
    if (!(hr.caps & CAP.PROTOCOL_41)) {
      this.protocolError(1251, '08004', 'Client does not support authentication protocol requested by server; consider upgrading MySQL client', 'no CLIENT_PROTOCOL_41')
      return false
    }
    const ok = await this.authenticate(hr.user, hr.plugin, hr.auth, 'connect', this.srv.defaultPlugin)
    if (ok) this.session.database = hr.database
    return ok
  }

  private async upgradeToTls(ctx: tls.SecureContext): Promise<void> {
    const leftover = this.ch.detach()
    if (leftover.length > 0) this.raw.unshift(leftover)
    const t = new tls.TLSSocket(this.raw, { isServer: true, secureContext: ctx })
    // A failed handshake also emits 'error' later; without a listener Node would throw.
    t.on('error', () => this.raw.destroy())
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error('TLS handshake timed out')), this.left())
      const onSecure = () => done()
      const onError = (e: Error) => done(e)
      const done = (e?: Error) => {
        clearTimeout(timer)
        t.off('secure', onSecure)
        t.off('error', onError)
        if (e) reject(e)
        else resolve()
      }
      t.once('secure', onSecure)
      t.once('error', onError)
    })
    this.secure = true
    this.ch.attach(t)
    this.record({ kind: 'tls-upgrade' })
  }

  /**
   * MySQL's plugin negotiation (sql_authentication.cc): if the account's plugin differs from the
   * one that produced the current scramble, auth RESTARTs with the account's plugin. On restart
   * caching_sha2/sha256 always write a fresh scramble first, so the client always gets an
   * AuthSwitchRequest; native reuses the saved scramble and only switches if the client named
   * another plugin. Without a restart, a client that used another plugin gets a switch carrying
   * the same scramble. Either way at most one switch.
   */
  private async authenticate(user: string, clientPlugin: string, firstResp: Buffer, mode: 'connect' | 'change-user', scramblePlugin: AuthPluginName): Promise<boolean> {
    const account = this.srv.accounts.get(user)
    // Unknown user: run the greeting plugin's exchange anyway and fail at the end (MySQL 8 uses a
    // random plugin for its decoy accounts; a fixed one keeps tests deterministic).
    const plugin = account?.plugin ?? this.srv.defaultPlugin
    const restart = mode === 'change-user' || plugin !== scramblePlugin
    const fresh = restart && plugin !== 'mysql_native_password'
    const needSwitch = fresh || clientPlugin !== plugin
    let resp = firstResp
    if (needSwitch) {
      if (!(this.clientCaps & CAP.PLUGIN_AUTH)) {
        this.protocolError(1251, '08004', 'Client does not support authentication protocol requested by server; consider upgrading MySQL client', 'switch needed without CLIENT_PLUGIN_AUTH')
        return false
      }
      if (fresh) this.scramble = newScramble()
      this.ch.send(authSwitch(plugin, this.scramble))
      this.record({ kind: 'auth-switch', user, from: clientPlugin, to: plugin, freshScramble: fresh })
      resp = await this.ch.read(this.left())
    }

    const io: PluginIo = {
      ch: this.ch,
      secure: this.secure,
      keys: this.srv.keys,
      cache: this.srv.cache,
      splitPemWrites: this.srv.splitPemWrites,
      readTimeoutMs: this.left,
      record: (ev) => this.record(ev),
    }
    const res = await runPlugin(plugin, account, user, resp, this.scramble, io)
    let reason = res.ok ? '' : res.reason
    let passwordUsed = res.ok ? resp.length > 0 : res.passwordUsed
    if (res.ok && account?.requireSsl && !this.secure) {
      reason = 'account requires SSL'
      passwordUsed = true
    }
    if (reason === '') {
      if (res.pending.length > 0 && !this.srv.oneReadFastAuth) {
        this.ch.send(...res.pending)
        await delay(20)
        this.ch.send(okPacket())
      } else {
        this.ch.send(...res.pending, okPacket())
      }
      this.session.user = user
      this.record({ kind: 'auth-ok', user, plugin })
      return true
    }
    this.ch.send(...res.pending, accessDenied(user, passwordUsed))
    this.record({ kind: 'auth-fail', user, plugin, reason })
    return false
  }

  private async commandPhase(): Promise<void> {
    for (;;) {
      this.ch.resetSeq()
      const payload = await this.ch.read(this.srv.idleTimeoutMs)
      if (payload.length === 0) {
        this.ch.send(errPacket(1047, '08S01', 'Unknown command'))
        continue
      }
      // Only the command byte: query text may contain secrets (IDENTIFIED BY ...).
      this.record({ kind: 'command', command: payload[0] })
      const reply = handleCommand(payload, this.session, this.srv.stats)
      if (reply.kind === 'quit') return
      if (reply.kind === 'change-user') {
        if (!(await this.changeUser(payload))) return
        continue
      }
      if (reply.delayMs) await delay(reply.delayMs)
      this.ch.send(...reply.messages)
    }
  }

  /** COM_CHANGE_USER re-runs auth at seq 1...; a failure disconnects, as MySQL sets KILL_CONNECTION. */
  private async changeUser(payload: Buffer): Promise<boolean> {
    const r = new Reader(payload)
    r.u8()
    const user = r.nulStr()
    let auth: Buffer
    if (this.clientCaps & CAP.SECURE_CONNECTION) auth = r.bytes(r.u8())
    else {
      const end = payload.indexOf(0, r.off)
      if (end < 0) throw new MalformedPacketError('unterminated auth data in COM_CHANGE_USER')
      auth = r.bytes(end - r.off)
      r.u8()
    }
    const database = r.remaining > 0 ? r.nulStr() : ''
    if (r.remaining >= 2) r.u16() // character set
    const plugin = this.clientCaps & CAP.PLUGIN_AUTH && r.remaining > 0 ? r.nulStr() : 'mysql_native_password'
    this.record({ kind: 'change-user', user, plugin })
    this.deadline = Date.now() + this.srv.handshakeTimeoutMs
    const ok = await this.authenticate(user, plugin, auth, 'change-user', this.srv.defaultPlugin)
    if (ok) this.session.database = database
    return ok
  }
}

export async function startFakeMysql8(opts: FakeMysql8Options): Promise<FakeMysql8> {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: opts.rsaKeyBits ?? 2048 })
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const secureContext = opts.tls ? tls.createSecureContext({ cert: opts.tls.cert, key: opts.tls.key }) : null
  const srv: ServerState = {
    accounts: new Map(opts.accounts.map((a) => [a.user, a])),
    defaultPlugin: opts.defaultPlugin ?? 'caching_sha2_password',
    version: opts.serverVersion ?? '8.0.40-fake',
    caps: BASE_CAPS | (secureContext ? CAP.SSL : 0),
    secureContext,
    keys: { publicPem, privateKey, cipherLength: (privateKey.asymmetricKeyDetails?.modulusLength ?? 2048) / 8 },
    cache: new Set(),
    splitPemWrites: opts.splitPemWrites ?? false,
    oneReadFastAuth: opts.oneReadFastAuth ?? true,
    handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 10_000,
    idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
    events: [],
    nextConnId: 8,
    stats: { questions: 0, startedAt: Date.now() },
  }
  const sockets = new Set<net.Socket>()
  const server = net.createServer((sock) => {
    sockets.add(sock)
    sock.on('close', () => sockets.delete(sock))
    // Errors surface to the connection as 'close'; this listener only stops Node from throwing.
    sock.on('error', () => {})
    // Small writes (split PEM) must leave as separate segments, not wait for Nagle.
    sock.setNoDelay(true)
    void new FakeConnection(srv, sock, srv.nextConnId++).run()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as net.AddressInfo).port
  return {
    host: '127.0.0.1',
    port,
    publicKeyPem: publicPem,
    events: srv.events,
    connections: () => sockets.size,
    clearCache: () => srv.cache.clear(),
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

