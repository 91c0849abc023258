/**
 * The local Kafka-protocol broker for dev, demo and tests: librdkafka's mock cluster, started through Debian's
 * kcat (a consumer on a keep-alive topic holds the cluster up). It speaks the real wire protocol: produce, fetch,
 * consumer groups and offset commits work; topics are auto-created (4 partitions); each partition keeps only
 * about 5 MB. Not for production: see docker/ for real Apache Kafka.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { TayguardError } from '../../core/errors';

export interface LocalBroker {
  readonly bootstrap: string;
  readonly brokers: string[];
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

export function kcatAvailable(): boolean {
  return spawnSync('kcat', ['-V'], { stdio: 'ignore' }).status === 0;
}

const INSTALL_HINT = 'install it with: sudo apt-get update && sudo apt-get install -y kcat (or run: bash scripts/ensure-kcat.sh)';

export function startLocalBroker(options: { brokers?: number; timeoutMs?: number } = {}): Promise<LocalBroker> {
  const n = options.brokers ?? 3;
  if (!kcatAvailable()) {
    return Promise.reject(new TayguardError('BROKER_UNAVAILABLE', `kcat is not installed; ${INSTALL_HINT}`));
  }
  const child = spawn('kcat', ['-X', `test.mock.num.brokers=${n}`, '-b', 'localhost:1', '-C', '-t', 'tayguard.keepalive', '-d', 'mock', '-q'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new TayguardError('BROKER_UNAVAILABLE', `kcat did not report a mock cluster within ${options.timeoutMs ?? 10000} ms`));
    }, options.timeoutMs ?? 10000);
    const onData = (chunk: Buffer) => {
      seen = (seen + chunk.toString('utf8')).slice(-8192);
      const m = /Mock cluster \S+ bootstrap\.servers=(\S+)/.exec(seen);
      if (!m) return;
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      // Keep draining the debug output so kcat never blocks on a full pipe.
      child.stderr?.resume();
      const bootstrap = m[1];
      resolve({
        bootstrap,
        brokers: bootstrap.split(','),
        process: child,
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    };
    child.stderr?.on('data', onData);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new TayguardError('BROKER_UNAVAILABLE', `could not start kcat: ${e.message}; ${INSTALL_HINT}`, { cause: e }));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new TayguardError('BROKER_UNAVAILABLE', `kcat exited (code ${code}) before the mock cluster came up: ${seen.slice(-400)}`));
    });
  });
}
