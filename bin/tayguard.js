#!/usr/bin/env node
'use strict';
// From a source checkout, run the TypeScript directly (tsx); from an installed build (docker/), run dist/.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const source = path.join(root, 'src', 'cli.ts');
if (fs.existsSync(source)) {
  require('tsx/cjs');
  require(source).main();
} else {
  require(path.join(root, 'dist', 'src', 'cli.js')).main();
}
