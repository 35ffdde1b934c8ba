/**
 * The Node side of the neon step server (server-c.ts): starts the built program once (under
 * qemu for aarch64 builds), frames requests and replies on its stdin/stdout, and shuts it down.
 * One request at a time; if the child dies, the pending request fails naming what it ran and
 * the child's last stderr lines.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { LlmccError } from '../../ir/errors.js';
import { SERVER_FROM_HOST, SERVER_QUIT, SERVER_READY } from './server-c.js';
import { runnerFor, type NeonMode } from './toolchain.js';

/** One input of a request: its bytes, or the last run's output with this index (kept in C). */
export type ServerInput = Uint8Array | { lastOutput: number };

export interface ServerRequest {
  program: number;
  inputs: readonly ServerInput[];
  /** Output indices to send back, and their byte counts. */
  send: readonly { index: number; bytes: number }[];
  /** Names the program and step in errors. */
  what: string;
}

const STDERR_KEPT = 4096;

export class NeonStepServer {
  private readonly child: ChildProcessWithoutNullStreams;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: { bytes: number; resolve: (data: Buffer) => void; reject: (error: Error) => void } | undefined;
  private stderrTail = '';
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;
  private queue: Promise<unknown> = Promise.resolve();
  /** What the child is doing, for errors. */
  private doing = 'starting';
  /** Requests answered so far: a carried cache is valid only right after the run that made it. */
  runs = 0;

  private constructor(readonly mode: NeonMode, exe: string, args: readonly string[], cwd: string) {
    const { file, args: argv } = runnerFor(mode, exe, args);
    const env = mode === 'host-sanitize' ? { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } : process.env;
    this.child = spawn(file, argv, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.byteLength;
      this.deliver();
    });
    this.child.stderr.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-STDERR_KEPT);
    });
    // A write after the child died: reported through the exit, not as an unhandled error.
    this.child.stdin.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null): void => {
        this.exit ??= { code, signal };
        this.waiter?.reject(this.diedError());
        this.waiter = undefined;
        resolve();
      };
      this.child.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') this.stderrTail += `'${file}' is not installed`;
        else this.stderrTail += error.message;
        done(null, null);
      });
      this.child.on('close', done);
    });
  }

  /** Starts `exe WEIGHTS` (under qemu for aarch64 modes) and waits until it has loaded the weights. */
  static async start(mode: NeonMode, exe: string, weightsFile: string, cwd: string): Promise<NeonStepServer> {
    const server = new NeonStepServer(mode, exe, [weightsFile], cwd);
    try {
      const hello = await server.read(8);
      if (hello.readUInt32LE(0) !== SERVER_READY) throw new LlmccError(`the neon step server (${mode}) answered with a bad greeting`, exe);
    } catch (error) {
      await server.close();
      throw error;
    }
    server.doing = 'idle';
    return server;
  }

  /** The child's process id (qemu's for aarch64 builds). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Sends one request and returns the outputs asked for (requests are run one at a time). */
  request(request: ServerRequest): Promise<Uint8Array[]> {
    const result = this.queue.then(() => this.exchange(request));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async exchange(request: ServerRequest): Promise<Uint8Array[]> {
    this.doing = request.what;
    if (this.exit) throw this.diedError();
    const words = (values: number[]): Buffer => {
      const b = Buffer.alloc(values.length * 4);
      values.forEach((v, i) => b.writeUInt32LE(v >>> 0, i * 4));
      return b;
    };
    const parts: Uint8Array[] = [words([request.program])];
    for (const input of request.inputs) {
      if (input instanceof Uint8Array) parts.push(words([SERVER_FROM_HOST]), input);
      else parts.push(words([input.lastOutput]));
    }
    parts.push(words([request.send.length, ...request.send.map((s) => s.index)]));
    this.child.stdin.write(Buffer.concat(parts));
    const status = (await this.read(4)).readUInt32LE(0);
    this.runs++;
    if (status !== 0) {
      await new Promise((resolve) => setTimeout(resolve, 50)); // let stderr arrive
      throw new LlmccError(`the neon step server refused ${request.what} (status ${status}): ${this.lastStderr() || 'no message'}`);
    }
    const outputs: Uint8Array[] = [];
    for (const { bytes } of request.send) outputs.push(new Uint8Array(await this.read(bytes)));
    this.doing = 'idle';
    return outputs;
  }

  /** Asks the child to stop, then kills it if it has not within a few seconds. Safe to call twice. */
  async close(): Promise<void> {
    if (!this.exit) {
      this.doing = 'stopping';
      const quit = Buffer.alloc(4);
      quit.writeUInt32LE(SERVER_QUIT, 0);
      this.child.stdin.end(quit);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(timer);
    }
  }

  private read(bytes: number): Promise<Buffer> {
    if (this.waiter) return Promise.reject(new Error('neon step server: overlapping reads'));
    return new Promise((resolve, reject) => {
      this.waiter = { bytes, resolve, reject };
      this.deliver();
      if (this.waiter && this.exit) {
        this.waiter = undefined;
        reject(this.diedError());
      }
    });
  }

  private deliver(): void {
    const waiter = this.waiter;
    if (!waiter || this.buffered < waiter.bytes) return;
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const data = all.subarray(0, waiter.bytes);
    const rest = all.subarray(waiter.bytes);
    this.chunks = rest.byteLength ? [rest] : [];
    this.buffered = rest.byteLength;
    this.waiter = undefined;
    waiter.resolve(data);
  }

  private lastStderr(): string {
    return this.stderrTail.trim().split('\n').slice(-6).join(' | ');
  }

  private diedError(): LlmccError {
    const how = this.exit?.signal ? `signal ${this.exit.signal}` : `exit ${this.exit?.code ?? '?'}`;
    return new LlmccError(`the neon step server (${this.mode}) died (${how}) while ${this.doing}${this.lastStderr() ? `: ${this.lastStderr()}` : ''}`);
  }
}
