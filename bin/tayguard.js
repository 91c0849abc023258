#!/usr/bin/env node
'use strict';
// From a source checkout, run the TypeScript directly (tsx); from an installed build (docker/), run dist/.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const source = path.join(root, 'src', 'cli.ts');
const built = path.join(root, 'dist', 'src', 'cli.js');

function hasTsx() {
  try {
    require.resolve('tsx/cjs');
    return true;
  } catch {
    return false;
  }
}

if (fs.existsSync(source) && hasTsx()) {
  require('tsx/cjs');
  require(source).main();
} else if (fs.existsSync(built)) {
  require(built).main();
} else {
  process.stderr.write('tayguard: neither tsx (a dev dependency: run `npm install`) nor a build (`npm run build`) is available\n');
  process.exit(1);
}
