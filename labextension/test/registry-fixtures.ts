/** Model registry answers shared by the registry specs. */

/** A version as `GET models/{name}` lists it. */
export function version(n: number, extra: object = {}) {
  return {
    name: 'digits-mlp',
    version: n,
    framework: 'torch',
    created_at: 1000 + n,
    aliases: [] as string[],
    tags: {},
    metrics: { loss: 0.3, accuracy: 0.8 + n / 100 },
    params: { lr: 0.01 },
    run_id: `run-${n}`,
    job_id: null,
    notebook: 'train.ipynb',
    notebook_sha256: 'ab'.repeat(32),
    git: { commit: 'c0ffee'.repeat(6) + 'abcd', dirty: true, branch: 'main' },
    versions: { python: '3.12.1', torch: '2.3.0' },
    artifacts: [
      {
        format: 'safetensors',
        file: 'model.safetensors',
        uri: `/state/models/digits-mlp/${n}/model.safetensors`,
        sha256: '0123456789abcdef'.repeat(4),
        size: 2048,
        max_abs_diff: 0,
        tolerance: 1e-6,
        details: {}
      },
      {
        format: 'onnx-int8',
        file: 'model.int8.onnx',
        uri: `/state/models/digits-mlp/${n}/model.int8.onnx`,
        sha256: 'fedcba9876543210'.repeat(4),
        size: 900,
        max_abs_diff: 0.02,
        tolerance: 1e-3,
        details: {
          export_seconds: 0.3412,
          verify_seconds: 0.0213,
          check_rows: 4,
          accuracy: 0.806,
          reference_accuracy: 0.81,
          accuracy_change: -0.004
        }
      }
    ],
    failed_formats: { tflite: 'needs tensorflow' },
    evaluations: [],
    ...extra
  };
}
