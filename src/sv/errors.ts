// Error texts as runit's sv prints them (djb's error_str wording, not
// strerror's), so that `fail:` and `warning:` lines match byte for byte.
import os from 'node:os';

const texts: Record<string, string> = {
  EINTR: 'interrupted system call',
  ENOMEM: 'out of memory',
  ENOENT: 'file does not exist',
  ETXTBSY: 'text busy',
  EIO: 'input/output error',
  EEXIST: 'file already exists',
  ETIMEDOUT: 'timed out',
  EINPROGRESS: 'operation in progress',
  EAGAIN: 'temporary failure',
  EWOULDBLOCK: 'temporary failure',
  EPIPE: 'broken pipe',
  EPERM: 'permission denied',
  EACCES: 'access denied',
  ENXIO: 'device not configured',
  ENODEV: 'device not configured',
  EPROTO: 'protocol error',
  EISDIR: 'is a directory',
  ECONNREFUSED: 'connection refused',
  ENOTDIR: 'not a directory',
  ESRCH: 'no such process',
  E2BIG: 'argument list too long',
  ENOEXEC: 'exec format error',
  EBADF: 'file descriptor not open',
  ECHILD: 'no child processes',
  EFAULT: 'bad address',
  ENOTBLK: 'not a block device',
  EBUSY: 'device busy',
  EXDEV: 'cross-device link',
  EINVAL: 'invalid argument',
  ENFILE: 'system cannot open more files',
  EMFILE: 'process cannot open more files',
  ENOTTY: 'not a tty',
  EFBIG: 'file too big',
  ENOSPC: 'out of disk space',
  ESPIPE: 'unseekable descriptor',
  EROFS: 'read-only file system',
  EMLINK: 'too many links',
  EDOM: 'input out of range',
  ERANGE: 'output out of range',
  EALREADY: 'operation already in progress',
  ENOTSOCK: 'not a socket',
  EDESTADDRREQ: 'destination address required',
  EMSGSIZE: 'message too long',
  EPROTOTYPE: 'incorrect protocol type',
  ENOPROTOOPT: 'protocol not available',
  EPROTONOSUPPORT: 'protocol not supported',
  ESOCKTNOSUPPORT: 'socket type not supported',
  EOPNOTSUPP: 'operation not supported',
  ENOTSUP: 'operation not supported',
  EPFNOSUPPORT: 'protocol family not supported',
  EAFNOSUPPORT: 'address family not supported',
  EADDRINUSE: 'address already used',
  EADDRNOTAVAIL: 'address not available',
  ENETDOWN: 'network down',
  ENETUNREACH: 'network unreachable',
  ENETRESET: 'network reset',
  ECONNABORTED: 'connection aborted',
  ECONNRESET: 'connection reset',
  ENOBUFS: 'out of buffer space',
  EISCONN: 'already connected',
  ENOTCONN: 'not connected',
  ESHUTDOWN: 'socket shut down',
  ETOOMANYREFS: 'too many references',
  ELOOP: 'symbolic link loop',
  ENAMETOOLONG: 'file name too long',
  EHOSTDOWN: 'host down',
  EHOSTUNREACH: 'host unreachable',
  ENOTEMPTY: 'directory not empty',
  EUSERS: 'too many users',
  EDQUOT: 'disk quota exceeded',
  ESTALE: 'stale NFS file handle',
  EREMOTE: 'too many levels of remote in path',
  ENOLCK: 'no locks available',
  ENOSYS: 'system call not available',
  ENOSTR: 'not a stream device',
  ETIME: 'timer expired',
  ENOSR: 'out of stream resources',
  ENOMSG: 'no message of desired type',
  EBADMSG: 'bad message type',
  EIDRM: 'identifier removed',
  ENONET: 'machine not on network',
  ENOLINK: 'link severed',
  EADV: 'advertise error',
  ESRMNT: 'srmount error',
  ECOMM: 'communication error',
  EMULTIHOP: 'multihop attempted',
  EREMCHG: 'remote address changed',
};

/** runit's text for an errno, given as Node's code ('ENOENT') or as a number. */
export function errorText(err: string | number): string {
  const code = typeof err === 'number' ? errnoName(err) : err;
  if (code === undefined) return err === 0 ? 'no error' : 'unknown error';
  return Object.hasOwn(texts, code) ? texts[code]! : 'unknown error';
}

let names: Map<number, string> | undefined;

/** The symbolic name of an errno number on this platform ('ENOENT' for 2). */
export function errnoName(n: number): string | undefined {
  if (!names) {
    names = new Map();
    // Several names can share a number (EAGAIN/EWOULDBLOCK): keep the first.
    for (const [name, num] of Object.entries(os.constants.errno)) if (!names.has(num)) names.set(num, name);
  }
  return names.get(n);
}

/** The code of an error thrown by node:fs or process.chdir, if it has one. */
export function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
