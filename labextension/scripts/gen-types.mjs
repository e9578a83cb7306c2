/**
 * Regenerate `src/openapi.ts`: the TypeScript types of the server's OpenAPI
 * document, which the Python package prints (`python -m
 * lepton_lab.server.openapi`). Run `npm run gen:types` after changing a REST
 * shape; `tests/unit/test_ts_types.py` fails while the file is stale.
 *
 *   node scripts/gen-types.mjs [output]   (default: src/openapi.ts)
 *
 * Python: $PYTHON if set, else ../.venv/bin/python if it exists, else python3.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import openapiTS, { astToString } from 'openapi-typescript';
import * as prettier from 'prettier';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const target = join(root, 'src', 'openapi.ts');
const output = resolve(process.argv[2] ?? target);

function python() {
  if (process.env.PYTHON) {
    return process.env.PYTHON;
  }
  const venv = resolve(root, '..', '.venv', 'bin', 'python');
  return existsSync(venv) ? venv : 'python3';
}

/** The document as JSON text, as the package's module prints it. */
function documentText(py) {
  return execFileSync(py, ['-m', 'lepton_lab.server.openapi'], {
    cwd: resolve(root, '..'),
    encoding: 'utf-8',
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'inherit']
  });
}

const dir = mkdtempSync(join(tmpdir(), 'lepton-openapi-'));
try {
  const file = join(dir, 'openapi.json');
  const text = documentText(python());
  JSON.parse(text); // fail here, clearly, on anything but a JSON document
  writeFileSync(file, text);
  const ast = await openapiTS(pathToFileURL(file), {
    alphabetize: false,
    emptyObjectsUnknown: true,
    // a field with a default is optional in a request body
    defaultNonNullable: false
  });
  const banner =
    '/**\n * The types of the Lepton Lab REST API, generated from its OpenAPI document\n' +
    ' * by `npm run gen:types` (scripts/gen-types.mjs). Do not edit by hand.\n */\n';
  // formatted as the checked-in file is, wherever the output goes
  const config = (await prettier.resolveConfig(target)) ?? {};
  const formatted = await prettier.format(banner + astToString(ast), {
    ...config,
    filepath: target
  });
  const previous = existsSync(output) ? readFileSync(output, 'utf-8') : null;
  if (previous !== formatted) {
    writeFileSync(output, formatted);
  }
  console.log(`${previous === formatted ? 'unchanged' : 'wrote'} ${output}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
