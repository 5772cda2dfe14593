// Unix-socket connections that can hand an open file to the peer (SCM_RIGHTS), for clamd's FILDES.
//
// Node's public net API cannot attach a descriptor to a write. libuv can (uv_write2), and Node reaches
// it for a pipe opened in IPC mode: the stream's write with a "send handle" (what child_process uses to
// pass sockets). The pipe and write-request classes are only exposed by process.binding('pipe_wrap')
// and ('stream_wrap'), on every supported Node line (22, 24). A pipe handle opened on a regular file's
// descriptor is accepted as the handle to send: libuv only needs its descriptor. Whatever of this a
// Node release lacks, `fdPassing()` answers undefined and callers stream the bytes instead.

import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';

interface WriteReq {
  handle: unknown;
  oncomplete: (status: number) => void;
}

interface PipeHandle {
  open(fd: number): number;
  close(cb?: () => void): void;
  writeUtf8String(req: WriteReq, data: string, sendHandle?: PipeHandle): number;
}

interface Bindings {
  readonly Pipe: new (type: number) => PipeHandle;
  readonly ipc: number;
  readonly plain: number;
  readonly WriteWrap: new () => WriteReq;
}

/** A file could not be attached to the connection: the peer got nothing, stream the bytes instead. */
export class FdPassingError extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.name = 'FdPassingError';
    this.code = code;
  }
}

let loaded: Bindings | null | undefined;
/** The IPC-mode pipes made here: a plain pipe would send the byte and silently drop the descriptor. */
const capable = new WeakSet<object>();

/**
 * process.binding, without the DEP0111 warning it gives under --pending-deprecation: in queue mode fd 2
 * is the mail log, and a warning there would be noise an admin learns to ignore.
 */
function binding(name: string): Record<string, unknown> {
  const emit = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    const code = typeof rest[1] === 'string' ? rest[1] : (rest[0] as { code?: string } | undefined)?.code;
    if (code === 'DEP0111') return;
    return (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    return (process as unknown as { binding(n: string): Record<string, unknown> }).binding(name);
  } finally {
    process.emitWarning = emit;
  }
}

function load(): Bindings | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  try {
    const pipeWrap = binding('pipe_wrap');
    const streamWrap = binding('stream_wrap');
    const Pipe = pipeWrap.Pipe as Bindings['Pipe'] | undefined;
    const kinds = pipeWrap.constants as { IPC?: unknown; SOCKET?: unknown } | undefined;
    const WriteWrap = streamWrap.WriteWrap as Bindings['WriteWrap'] | undefined;
    if (typeof Pipe !== 'function' || typeof WriteWrap !== 'function' || typeof kinds?.IPC !== 'number' || typeof kinds.SOCKET !== 'number') return null;
    if (typeof (Pipe.prototype as Partial<PipeHandle>).writeUtf8String !== 'function' || typeof (Pipe.prototype as Partial<PipeHandle>).open !== 'function') return null;
    loaded = { Pipe, ipc: kinds.IPC, plain: kinds.SOCKET, WriteWrap };
  } catch {
    loaded = null;
  }
  return loaded;
}

function errorName(status: number): string {
  try {
    return getSystemErrorName(status);
  } catch {
    return `error ${status}`;
  }
}

/** Whether this Node can attach a file to a Unix-socket write. */
export function fdPassingAvailable(): boolean {
  return load() !== null;
}

/**
 * A new, unconnected socket whose pipe can carry descriptors (connect it with `socket.connect({ path })`);
 * undefined when this Node cannot do it. It reads and writes like any net.Socket.
 */
export function fdCapableSocket(): Socket | undefined {
  const b = load();
  if (!b) return undefined;
  // `handle` and `manualStart` are net.Socket options Node uses for its own IPC channels; without
  // manualStart the socket would start reading before it is connected and fail with ENOTCONN.
  const handle = new b.Pipe(b.ipc);
  capable.add(handle);
  return new Socket({ handle, manualStart: true } as unknown as ConstructorParameters<typeof Socket>[0]);
}

/**
 * Open `path` read-only (no symlinks) and send one byte `byte` on `socket` with that descriptor
 * attached; the descriptor is closed here once the kernel holds its copy for the peer. The file must be
 * a regular file of exactly `size` bytes (the bytes the peer is to see). Rejects with FdPassingError
 * when nothing was sent (no such file, another size, a socket that cannot carry descriptors), with an
 * Error carrying `code` when the write itself failed (the peer went away).
 */
export function sendFile(socket: Socket, path: string, size: number, byte = '\0'): Promise<void> {
  const b = load();
  const handle = (socket as unknown as { _handle?: PipeHandle | null })._handle;
  if (!b || !handle || !capable.has(handle)) return Promise.reject(new FdPassingError('this connection cannot carry a file descriptor', 'ENOTSUP'));
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'EUNKNOWN';
    return Promise.reject(new FdPassingError(`${path}: ${(err as Error).message}`, code));
  }
  const carrier = new b.Pipe(b.plain);
  let opened = false;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FdPassingError(`${path}: not a regular file`, 'EINVAL');
    if (st.size !== size) throw new FdPassingError(`${path}: ${st.size} bytes, not the message's ${size}`, 'EINVAL');
    const err = carrier.open(fd);
    if (err !== 0) throw new FdPassingError(`${path}: cannot wrap the descriptor: ${errorName(err)}`, 'EINVAL');
    opened = true;
  } catch (err) {
    // The carrier owns the descriptor once opened: closing it closes the file.
    if (opened) carrier.close();
    else closeSync(fd);
    return Promise.reject(err instanceof FdPassingError ? err : new FdPassingError((err as Error).message, 'EUNKNOWN'));
  }
  return new Promise<void>((resolve, reject) => {
    // Our descriptor is closed once the write is done, or when the connection closes first.
    let held = true;
    const release = (): void => {
      if (!held) return;
      held = false;
      socket.off('close', release);
      carrier.close();
    };
    socket.once('close', release);
    const req = new b.WriteWrap();
    req.handle = handle;
    req.oncomplete = (status: number) => {
      release();
      if (status === 0) resolve();
      else {
        const code = errorName(status);
        reject(Object.assign(new Error(`sending the file descriptor failed: ${code}`), { code }));
      }
    };
    const err = handle.writeUtf8String(req, byte, carrier);
    if (err !== 0) {
      release();
      // EBADF/EINVAL from libuv: the handle is not an IPC pipe, nothing went out.
      reject(new FdPassingError(`sending the file descriptor failed: ${errorName(err)}`, 'ENOTSUP'));
    }
  });
}
