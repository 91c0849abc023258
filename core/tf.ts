/**
 * The one place that picks a TensorFlow.js backend.
 * Order: @tensorflow/tfjs-node when it loads (native libtensorflow; optional dependency because its install
 * downloads a binary), else @tensorflow/tfjs with the WebAssembly backend (about 4x the pure-JS cpu backend),
 * else cpu. `TFJS_BACKEND=wasm|cpu|tensorflow` forces one. Everything imports `tf` from here so that there is
 * exactly one tfjs engine in the process.
 */
import * as tf from '@tensorflow/tfjs';
import { TayguardError } from './errors';

export { tf };

let ready: Promise<string> | undefined;

function tryLoadNode(): boolean {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}

async function pick(preferred: string | undefined): Promise<string> {
  const wanted = preferred ?? (tryLoadNode() ? 'tensorflow' : 'wasm');
  if (wanted === 'tensorflow' && !tryLoadNode()) {
    throw new TayguardError('CONFIG_INVALID', 'TFJS_BACKEND=tensorflow but @tensorflow/tfjs-node did not load; unset TFJS_BACKEND to use wasm');
  }
  if (wanted === 'wasm') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-backend-wasm');
  }
  if (!(await tf.setBackend(wanted))) {
    if (wanted === 'cpu') throw new TayguardError('INTERNAL', 'no usable tfjs backend: even the cpu backend did not start; reinstall the dependencies (npm install) and check the log');
    await tf.setBackend('cpu');
  }
  await tf.ready();
  return tf.getBackend();
}

/** Initialise the backend once per process; returns its name ("tensorflow", "wasm" or "cpu"). */
export function initTf(preferred: string | undefined = process.env.TFJS_BACKEND || undefined): Promise<string> {
  ready ??= pick(preferred);
  return ready;
}
