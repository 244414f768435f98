/** A small strict RFC 5424 parser for tests: reads a syslog line back into its fields (SD param values unescaped). */

export interface ParsedSyslog {
  pri: number;
  version: number;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  /** SD-ID → params, in order. */
  sd: Map<string, [string, string][]>;
  msg: string | undefined;
}

/** Parses one RFC 5424 message; throws on anything malformed. */
export function parseRfc5424(line: string): ParsedSyslog {
  const head = /^<(\d{1,3})>(\d{1,2}) (\S+) (\S{1,255}) (\S{1,48}) (\S{1,128}) (\S{1,32}) /.exec(line);
  if (!head) throw new Error(`bad RFC 5424 header: ${JSON.stringify(line.slice(0, 120))}`);
  const [whole, pri, version, timestamp, hostname, appName, procId, msgId] = head as unknown as string[];
  if (
    timestamp !== '-' &&
    !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/.test(timestamp as string)
  ) {
    throw new Error(`bad timestamp ${timestamp}`);
  }
  let i = (whole as string).length;
  const sd = new Map<string, [string, string][]>();
  if (line[i] === '-') i++;
  else {
    while (line[i] === '[') {
      const id = /^[^\s=\]"]{1,32}/.exec(line.slice(i + 1));
      if (!id) throw new Error(`bad SD-ID at ${i}`);
      i += 1 + id[0].length;
      const params: [string, string][] = [];
      while (line[i] === ' ') {
        const name = /^[^\s=\]"]{1,32}/.exec(line.slice(i + 1));
        if (!name || line[i + 1 + name[0].length] !== '=' || line[i + 2 + name[0].length] !== '"') {
          throw new Error(`bad SD-PARAM at ${i}`);
        }
        i += 3 + name[0].length;
        let value = '';
        for (;;) {
          const c = line[i];
          if (c === undefined) throw new Error('unterminated PARAM-VALUE');
          if (c === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\' || line[i + 1] === ']')) {
            value += line[i + 1];
            i += 2;
          } else if (c === '"') {
            i++;
            break;
          } else if (c === ']') {
            throw new Error('unescaped ] in PARAM-VALUE');
          } else {
            value += c;
            i++;
          }
        }
        params.push([name[0], value]);
      }
      if (line[i] !== ']') throw new Error(`SD-ELEMENT not closed at ${i}`);
      i++;
      sd.set(id[0], params);
    }
    if (sd.size === 0) throw new Error('no STRUCTURED-DATA');
  }
  let msg: string | undefined;
  if (i < line.length) {
    if (line[i] !== ' ') throw new Error(`expected SP before MSG at ${i}`);
    msg = line.slice(i + 1);
  }
  return {
    pri: Number(pri),
    version: Number(version),
    timestamp: timestamp as string,
    hostname: hostname as string,
    appName: appName as string,
    procId: procId as string,
    msgId: msgId as string,
    sd,
    msg,
  };
}

/** Splits an octet-counted stream (RFC 6587) into messages and the incomplete tail; throws on a malformed frame. */
export function splitOctetFrames(data: Buffer): { frames: string[]; rest: Buffer } {
  const out: string[] = [];
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const lenText = data.subarray(i, sp).toString('ascii');
    if (!/^[1-9]\d*$/.test(lenText)) throw new Error(`bad frame length ${JSON.stringify(lenText)}`);
    const end = sp + 1 + Number(lenText);
    if (end > data.length) break;
    out.push(data.subarray(sp + 1, end).toString('utf8'));
    i = end;
  }
  return { frames: out, rest: data.subarray(i) };
}
