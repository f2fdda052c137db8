/**
 * "host:port", "[ipv6]:port" and bare ports from the YAML file, turned into HostPort values.
 * The schema checks the overall shape; this checks what a regular expression cannot (port range, IP syntax).
 */
import net from 'node:net'
import type { HostPort } from './types.js'

export type AddressResult = { ok: true; value: HostPort } | { ok: false; message: string }

const BRACKETED = /^\[([^\]]+)\]:([0-9]+)$/
const HOST_PORT = /^([^:]+):([0-9]+)$/
const DIGITS = /^[0-9]+$/

/**
 * @param defaultHost host used for a bare port; undefined means a bare port is not allowed (backends).
 */
export function parseAddress(value: unknown, defaultHost: string | undefined): AddressResult {
  if (typeof value === 'number' || (typeof value === 'string' && DIGITS.test(value))) {
    if (defaultHost === undefined) return { ok: false, message: 'must include a host: "host:port"' }
    return withPort(defaultHost, String(value))
  }
  if (typeof value !== 'string') return { ok: false, message: 'must be "host:port" or "[ipv6]:port"' }
  const bracketed = BRACKETED.exec(value)
  if (bracketed) {
    const host = bracketed[1]!
    // A zone id (fe80::1%eth0) is legal in a listen address; net.isIPv6 accepts it too.
    if (!net.isIPv6(host)) return { ok: false, message: `"${host}" is not an IPv6 address` }
    return withPort(host, bracketed[2]!)
  }
  const plain = HOST_PORT.exec(value)
  if (!plain) return { ok: false, message: 'must be "host:port" or "[ipv6]:port" (IPv6 addresses need brackets)' }
  const host = plain[1]!
  // Digits and dots only means the operator meant an IPv4 literal; "10.0.0.256" must not be looked up in DNS.
  if (/^[0-9.]+$/.test(host) && !net.isIPv4(host)) return { ok: false, message: `"${host}" is not an IPv4 address` }
  return withPort(host, plain[2]!)
}

function withPort(host: string, portText: string): AddressResult {
  const port = Number(portText)
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    return { ok: false, message: `port ${portText} is out of range (1-65535)` }
  }
  return { ok: true, value: { host, port } }
}

const IPV4_ANY = '0.0.0.0'
const IPV6_ANY = '::'

/**
 * Whether binding both addresses would collide although their text differs: a wildcard address takes the
 * port on every interface of its family, and on Linux "::" is dual-stack, so it also takes every IPv4 one.
 * Host names are not resolved (that would make validation depend on DNS); the bind reports those.
 */
export function addressesOverlap(a: HostPort, b: HostPort): boolean {
  if (a.port !== b.port) return false
  if (a.host === b.host) return true
  if (a.host === IPV6_ANY || b.host === IPV6_ANY) return true
  const v4 = (h: string): boolean => net.isIPv4(h) || h === 'localhost'
  return (a.host === IPV4_ANY && v4(b.host)) || (b.host === IPV4_ANY && v4(a.host))
}
