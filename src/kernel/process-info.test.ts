import assert from 'node:assert/strict';
import { test } from 'node:test';
import { effectiveUid, isInterpreter, parsePasswd, scriptArgument } from './process-info.js';

test('scriptArgument: first non-option argument of node and python, null for -e/-m/-c and non-interpreters', () => {
  assert.equal(scriptArgument('/usr/bin/node', ['node', 'app.js', '--port', '1']), 'app.js');
  assert.equal(
    scriptArgument('/usr/bin/node', [
      '/usr/bin/node',
      '--enable-source-maps',
      '-r',
      'hook',
      '/opt/w/engine.js',
    ]),
    '/opt/w/engine.js',
  );
  assert.equal(scriptArgument('/usr/bin/node', ['node', '--import=x', '--', '-weird.js']), '-weird.js');
  assert.equal(scriptArgument('/usr/bin/node', ['node', '-e', 'code']), null);
  assert.equal(scriptArgument('/usr/bin/node', ['node']), null);
  assert.equal(scriptArgument('/usr/bin/python3.11', ['python3', '-u', '-W', 'ignore', 'srv.py']), 'srv.py');
  assert.equal(scriptArgument('/usr/bin/python3.11', ['python3', '-m', 'http.server']), null);
  assert.equal(scriptArgument('/usr/bin/curl', ['curl', 'x']), null);
  assert.equal(isInterpreter('/usr/bin/nodejs'), true);
  assert.equal(isInterpreter('/usr/bin/bash'), false);
});

test('parsePasswd and effectiveUid', () => {
  const names = parsePasswd(
    'root:x:0:0:root:/root:/bin/bash\n# c\nbroken\nnobody:x:65534:65534::/:/x\ndup:x:0:0::/:/x\n',
  );
  assert.deepEqual(
    [...names],
    [
      [0, 'root'],
      [65534, 'nobody'],
    ],
  );
  assert.equal(effectiveUid('Name:\tx\nUid:\t1000\t65534\t65534\t65534\nGid:\t0\n'), 65534);
  assert.equal(effectiveUid('Name:\tx\n'), null);
});
