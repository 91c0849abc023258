/**
 * Reading and writing tfjs LayersModels as files (model.json + weights.bin), the format `tf.loadLayersModel`
 * and tfjs-node's `file://` loader read — without needing tfjs-node, which may not be installed.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { tf } from '../core/tf';
import { TayguardError } from '../core/errors';

export interface ModelFiles {
  readonly modelJson: Buffer;
  readonly weights: Buffer;
}

function joinWeightData(data: tf.io.WeightData | undefined): Buffer {
  if (data === undefined) return Buffer.alloc(0);
  const parts = Array.isArray(data) ? data : [data];
  return Buffer.concat(parts.map((p) => Buffer.from(p)));
}

/** Serialise a model to the two files of the tfjs "layers-model" format. */
export async function serializeModel(model: tf.LayersModel, extra: Record<string, unknown> = {}): Promise<ModelFiles> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (artifacts === undefined) throw new TayguardError('INTERNAL', 'tfjs did not hand over the model artifacts');
  const modelJson = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
    userDefinedMetadata: extra,
  };
  return { modelJson: Buffer.from(JSON.stringify(modelJson)), weights: joinWeightData(artifacts.weightData) };
}

/** Load model.json and the weight files its manifest names from a directory (or a path to model.json). */
export async function loadLayersModelFromDir(location: string): Promise<tf.LayersModel> {
  const jsonPath = location.endsWith('.json') ? location : path.join(location, 'model.json');
  let parsed: { modelTopology?: unknown; weightsManifest?: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] };
  try {
    parsed = JSON.parse(await fs.readFile(jsonPath, 'utf8'));
  } catch (e) {
    throw new TayguardError('MODEL_INVALID', `cannot read a tfjs model at ${jsonPath} (${(e as Error).message}); MODEL_PATH must point to a directory with model.json and its weight files`, { cause: e });
  }
  if (!parsed.modelTopology || !Array.isArray(parsed.weightsManifest)) {
    throw new TayguardError('MODEL_INVALID', `${jsonPath} is not a tfjs layers-model (no modelTopology or weightsManifest)`);
  }
  const dir = path.dirname(jsonPath);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of parsed.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) buffers.push(await fs.readFile(path.join(dir, p)));
  }
  const data = Buffer.concat(buffers);
  const weightData = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
  try {
    return await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: parsed.modelTopology as object, weightSpecs: specs, weightData }));
  } catch (e) {
    throw new TayguardError('MODEL_INVALID', `tfjs could not load ${jsonPath}: ${(e as Error).message}`, { cause: e });
  }
}
