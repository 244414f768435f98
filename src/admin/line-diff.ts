/**
 * A unified line diff of two texts (like `diff -u`), for config.diff. Pure:
 * longest common subsequence of the lines after trimming the common head and
 * tail, hunks with three lines of context.
 */

type Op = { kind: ' ' | '-' | '+'; line: string; a: number; b: number };

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

function lineOps(a: string[], b: string[]): Op[] {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  )
    tail++;
  const am = a.slice(head, a.length - tail);
  const bm = b.slice(head, b.length - tail);
  // lcs[i][j]: length of the LCS of am[i..] and bm[j..].
  const w = bm.length + 1;
  const lcs = new Uint32Array((am.length + 1) * w);
  for (let i = am.length - 1; i >= 0; i--)
    for (let j = bm.length - 1; j >= 0; j--)
      lcs[i * w + j] =
        am[i] === bm[j]
          ? lcs[(i + 1) * w + j + 1]! + 1
          : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!);
  const ops: Op[] = [];
  for (let k = 0; k < head; k++) ops.push({ kind: ' ', line: a[k]!, a: k, b: k });
  let i = 0;
  let j = 0;
  while (i < am.length || j < bm.length) {
    if (i < am.length && j < bm.length && am[i] === bm[j]) {
      ops.push({ kind: ' ', line: am[i]!, a: head + i++, b: head + j++ });
    } else if (i < am.length && (j === bm.length || lcs[(i + 1) * w + j]! >= lcs[i * w + j + 1]!)) {
      ops.push({ kind: '-', line: am[i]!, a: head + i++, b: head + j });
    } else {
      ops.push({ kind: '+', line: bm[j]!, a: head + i, b: head + j++ });
    }
  }
  for (let k = 0; k < tail; k++) {
    const ai = a.length - tail + k;
    ops.push({ kind: ' ', line: a[ai]!, a: ai, b: b.length - tail + k });
  }
  return ops;
}

const range = (start: number, count: number) => `${count === 0 ? start : start + 1},${count}`;

/**
 * The unified diff of `before` and `after` with file labels; '' when the texts have the same lines.
 */
export function unifiedDiff(before: string, after: string, labels: [string, string], context = 3): string {
  const ops = lineOps(splitLines(before), splitLines(after));
  const changed = ops.map((o, k) => (o.kind !== ' ' ? k : -1)).filter((k) => k >= 0);
  if (changed.length === 0) return '';
  const out = [`--- ${labels[0]}`, `+++ ${labels[1]}`];
  let k = 0;
  while (k < changed.length) {
    const start = Math.max(0, changed[k]! - context);
    let end = Math.min(ops.length, changed[k]! + context + 1);
    while (k + 1 < changed.length && changed[k + 1]! - context <= end) {
      k++;
      end = Math.min(ops.length, changed[k]! + context + 1);
    }
    k++;
    const hunk = ops.slice(start, end);
    const aCount = hunk.filter((o) => o.kind !== '+').length;
    const bCount = hunk.filter((o) => o.kind !== '-').length;
    out.push(`@@ -${range(hunk[0]!.a, aCount)} +${range(hunk[0]!.b, bCount)} @@`);
    for (const o of hunk) out.push(`${o.kind}${o.line}`);
  }
  return `${out.join('\n')}\n`;
}
