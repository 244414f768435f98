// Exit 0 when node_modules holds exactly what package-lock.json asks for (scripts/setup.sh skips
// `npm install` then), else 1 with the first differences on stderr. It compares the lock with npm's
// own record of what it installed (node_modules/.package-lock.json) and checks that each package
// directory is there; optional packages for other platforms (biome's binaries) are never installed.
const fs = require('node:fs');

const lock = JSON.parse(fs.readFileSync('package-lock.json', 'utf8')).packages ?? {};
let installed;
try {
  installed = JSON.parse(fs.readFileSync('node_modules/.package-lock.json', 'utf8')).packages ?? {};
} catch {
  process.stderr.write('node_modules has no record of an install (node_modules/.package-lock.json)\n');
  process.exit(1);
}
const differences = [];
for (const [path, want] of Object.entries(lock)) {
  if (!path.startsWith('node_modules/')) continue;
  const have = installed[path];
  if (have === undefined) {
    if (!want.optional) differences.push(`${path} is not installed`);
  } else if (have.version !== want.version) {
    differences.push(`${path} is ${have.version}, the lock wants ${want.version}`);
  } else if (!fs.existsSync(path)) {
    differences.push(`${path} is missing on disk`);
  }
}
for (const path of Object.keys(installed)) {
  if (path.startsWith('node_modules/') && !(path in lock)) differences.push(`${path} is not in the lock`);
}
if (differences.length > 0) {
  process.stderr.write(`${differences.slice(0, 3).join('\n')}\n`);
  process.exit(1);
}
