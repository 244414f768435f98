import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  matchesNoProxy,
  type ProxyEnvironment,
  type ProxyRoute,
  parseEtcEnvironment,
  parseProxyUrl,
  resolveProxy,
} from './proxy.js';
import type { Settings } from './schema.js';

const AUTO: Settings['proxy'] = { mode: 'auto', url: '' };
const HTTPS_TARGET = 'https://updates.warden.example/releases.json';
const HTTP_TARGET = 'http://feed.warden.example/releases.json';

function env(environment: Record<string, string | undefined>, etcEnvironment = ''): ProxyEnvironment {
  return { environment, etcEnvironment };
}

function viaProxy(route: ProxyRoute): { host: string; port: number; url: string; because: string } {
  if (route.kind !== 'proxy') assert.fail(`expected a proxy route, got direct: ${route.because}`);
  return route;
}

function direct(route: ProxyRoute): string {
  if (route.kind !== 'direct') assert.fail(`expected a direct route, got proxy ${route.url}`);
  return route.because;
}

describe('parseEtcEnvironment', () => {
  test('KEY=VALUE lines, quotes removed', () => {
    const text = [
      'PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"',
      'http_proxy=http://proxy.lan:3128',
      "https_proxy='http://proxy.lan:3129'",
      'no_proxy="localhost,127.0.0.1,.lan"',
    ].join('\n');
    assert.deepEqual(parseEtcEnvironment(text), {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin',
      http_proxy: 'http://proxy.lan:3128',
      https_proxy: 'http://proxy.lan:3129',
      no_proxy: 'localhost,127.0.0.1,.lan',
    });
  });

  test('comments, blank lines, export and surrounding spaces', () => {
    const text = [
      '# system-wide proxy',
      '',
      '   ',
      '  # indented comment',
      'export HTTP_PROXY=http://p.example:8080',
      'export   HTTPS_PROXY="http://p.example:8443"',
      '  FOO = bar  ',
      'no_equals_sign',
      '=nokey',
    ].join('\n');
    assert.deepEqual(parseEtcEnvironment(text), {
      HTTP_PROXY: 'http://p.example:8080',
      HTTPS_PROXY: 'http://p.example:8443',
      FOO: 'bar',
    });
  });

  test('CRLF line endings, empty values, = inside the value, unbalanced quotes kept', () => {
    const text = "A=1\r\nB=\r\nC=x=y\r\nD=\"open\r\nE=''\r\n";
    assert.deepEqual(parseEtcEnvironment(text), { A: '1', B: '', C: 'x=y', D: '"open', E: '' });
  });

  test('a later line wins', () => {
    assert.deepEqual(parseEtcEnvironment('X=1\nX=2\n'), { X: '2' });
  });

  test('an empty file is empty', () => {
    assert.deepEqual(parseEtcEnvironment(''), {});
  });
});

describe('parseProxyUrl', () => {
  test('default ports per scheme', () => {
    assert.deepEqual(parseProxyUrl('http://proxy.lan'), {
      host: 'proxy.lan',
      port: 80,
      url: 'http://proxy.lan',
    });
    assert.deepEqual(parseProxyUrl('https://proxy.lan'), {
      host: 'proxy.lan',
      port: 443,
      url: 'https://proxy.lan',
    });
    assert.deepEqual(parseProxyUrl('socks5://proxy.lan'), {
      host: 'proxy.lan',
      port: 1080,
      url: 'socks5://proxy.lan',
    });
    assert.equal(parseProxyUrl('socks5h://proxy.lan')?.port, 1080);
    assert.equal(parseProxyUrl('http://proxy.lan:80')?.port, 80);
  });

  test('explicit port; no scheme means http', () => {
    assert.deepEqual(parseProxyUrl('http://proxy.lan:3128'), {
      host: 'proxy.lan',
      port: 3128,
      url: 'http://proxy.lan:3128',
    });
    assert.deepEqual(parseProxyUrl('proxy.lan:3128'), {
      host: 'proxy.lan',
      port: 3128,
      url: 'http://proxy.lan:3128',
    });
    assert.deepEqual(parseProxyUrl('proxy.lan'), { host: 'proxy.lan', port: 80, url: 'http://proxy.lan' });
    assert.deepEqual(parseProxyUrl('10.0.0.1:8080'), {
      host: '10.0.0.1',
      port: 8080,
      url: 'http://10.0.0.1:8080',
    });
  });

  test('credentials and paths are dropped from the url; credentials are kept apart, decoded', () => {
    assert.deepEqual(parseProxyUrl('http://user:secret@proxy.lan:3128/'), {
      host: 'proxy.lan',
      port: 3128,
      url: 'http://proxy.lan:3128',
      credentials: 'user:secret',
    });
    assert.equal(parseProxyUrl('http://us%40er:p%3Ass@proxy.lan:3128')?.credentials, 'us@er:p:ss');
    assert.equal(parseProxyUrl('http://proxy.lan:3128')?.credentials, undefined);
  });

  test('IPv6 proxies lose their brackets in host', () => {
    assert.deepEqual(parseProxyUrl('http://[2001:db8::1]:3128'), {
      host: '2001:db8::1',
      port: 3128,
      url: 'http://[2001:db8::1]:3128',
    });
    assert.deepEqual(parseProxyUrl('[::1]:3128'), { host: '::1', port: 3128, url: 'http://[::1]:3128' });
  });

  test('upper-case hosts are lower-cased', () => {
    assert.equal(parseProxyUrl('HTTP://Proxy.LAN:3128')?.host, 'proxy.lan');
  });

  test('unusable values', () => {
    for (const v of [
      '',
      'ftp://proxy.lan',
      'http://',
      'http://proxy.lan:99999',
      'file:///tmp/x',
      'http://[::1',
    ]) {
      assert.equal(parseProxyUrl(v), undefined, v);
    }
  });
});

describe('matchesNoProxy', () => {
  test('a domain matches itself and its sub-domains, not look-alikes', () => {
    assert.ok(matchesNoProxy('example.com', 'example.com', 443));
    assert.ok(matchesNoProxy('example.com', 'www.example.com', 443));
    assert.ok(matchesNoProxy('example.com', 'a.b.example.com', 443));
    assert.ok(!matchesNoProxy('example.com', 'badexample.com', 443));
    assert.ok(!matchesNoProxy('example.com', 'example.com.evil', 443));
    assert.ok(!matchesNoProxy('www.example.com', 'example.com', 443));
  });

  test('a leading dot or *. means the domain and below', () => {
    assert.ok(matchesNoProxy('.example.com', 'www.example.com', 443));
    assert.ok(matchesNoProxy('.example.com', 'example.com', 443));
    assert.ok(!matchesNoProxy('.example.com', 'badexample.com', 443));
    assert.ok(matchesNoProxy('*.example.com', 'api.example.com', 443));
  });

  test('case-insensitive, several entries, commas or spaces', () => {
    assert.ok(matchesNoProxy('localhost, .LAN ,Example.COM', 'printer.lan', 80));
    assert.ok(matchesNoProxy('localhost .lan example.com', 'WWW.EXAMPLE.COM', 80));
    assert.ok(!matchesNoProxy('localhost,.lan', 'example.org', 80));
    assert.ok(!matchesNoProxy('', 'example.org', 80));
    assert.ok(!matchesNoProxy(' , ,', 'example.org', 80));
  });

  test('IP addresses match exactly, across spellings', () => {
    assert.ok(matchesNoProxy('127.0.0.1', '127.0.0.1', 80));
    assert.ok(!matchesNoProxy('127.0.0.1', '127.0.0.2', 80));
    assert.ok(matchesNoProxy('::1', '::1', 80));
    assert.ok(matchesNoProxy('::1', '[::1]', 80));
    assert.ok(matchesNoProxy('[::1]', '::1', 80));
    assert.ok(matchesNoProxy('2001:db8:0:0:0:0:0:1', '2001:db8::1', 80));
  });

  test('CIDR entries match addresses inside, never names', () => {
    assert.ok(matchesNoProxy('10.0.0.0/8', '10.1.2.3', 443));
    assert.ok(!matchesNoProxy('10.0.0.0/8', '11.0.0.1', 443));
    assert.ok(matchesNoProxy('192.168.0.0/16,fd00::/8', 'fd12::1', 443));
    assert.ok(!matchesNoProxy('10.0.0.0/8', 'ten.example', 443));
    // A malformed CIDR matches nothing.
    assert.ok(!matchesNoProxy('10.0.0.1/8', '10.0.0.1', 443));
  });

  test('host:port entries match only that port', () => {
    assert.ok(matchesNoProxy('example.com:8443', 'example.com', 8443));
    assert.ok(matchesNoProxy('example.com:8443', 'www.example.com', 8443));
    assert.ok(!matchesNoProxy('example.com:8443', 'example.com', 443));
    assert.ok(matchesNoProxy('10.0.0.1:3000', '10.0.0.1', 3000));
    assert.ok(!matchesNoProxy('10.0.0.1:3000', '10.0.0.1', 80));
    assert.ok(matchesNoProxy('[::1]:8080', '::1', 8080));
    assert.ok(!matchesNoProxy('[::1]:8080', '::1', 80));
    // A full IPv6 address is not read as address:port.
    assert.ok(matchesNoProxy('2001:db8:0:0:0:0:0:1', '2001:db8::1', 1));
  });

  test('* matches everything', () => {
    assert.ok(matchesNoProxy('*', 'anything.example', 443));
    assert.ok(matchesNoProxy('localhost,*', '10.0.0.1', 1));
  });

  test('a domain entry always matches that domain, whatever the port', () => {
    fc.assert(
      fc.property(fc.domain(), fc.domain(), fc.integer({ min: 1, max: 65535 }), (d, sub, port) => {
        const target = `${sub}.${d}`.toLowerCase();
        assert.ok(matchesNoProxy(d, d, port));
        assert.ok(matchesNoProxy(d, target, port));
        assert.ok(matchesNoProxy(`.${d}`, target, port));
      }),
      { numRuns: 300 },
    );
  });
});

describe('resolveProxy', () => {
  test('no proxy configured: direct', () => {
    assert.match(
      direct(resolveProxy(AUTO, env({}), HTTPS_TARGET)),
      /no https_proxy\/HTTPS_PROXY\/http_proxy\/HTTP_PROXY/,
    );
    assert.match(direct(resolveProxy(AUTO, env({}), HTTP_TARGET)), /no http_proxy\/HTTP_PROXY/);
    direct(resolveProxy(AUTO, env({ https_proxy: '   ' }), HTTPS_TARGET));
  });

  test('from the process environment', () => {
    const r = viaProxy(resolveProxy(AUTO, env({ https_proxy: 'http://proxy.lan:3128' }), HTTPS_TARGET));
    assert.equal(r.host, 'proxy.lan');
    assert.equal(r.port, 3128);
    assert.equal(r.url, 'http://proxy.lan:3128');
    assert.match(r.because, /https_proxy in the process environment/);
  });

  test('from /etc/environment', () => {
    const r = viaProxy(
      resolveProxy(AUTO, env({}, 'export HTTPS_PROXY="http://etc.proxy:8080"\n'), HTTPS_TARGET),
    );
    assert.equal(r.host, 'etc.proxy');
    assert.equal(r.port, 8080);
    assert.match(r.because, /HTTPS_PROXY in \/etc\/environment/);
  });

  test('the process environment beats /etc/environment', () => {
    const e = env({ https_proxy: 'http://env.proxy:1111' }, 'https_proxy=http://etc.proxy:2222\n');
    assert.equal(viaProxy(resolveProxy(AUTO, e, HTTPS_TARGET)).host, 'env.proxy');
    const h = env({ http_proxy: 'http://env.proxy:1111' }, 'http_proxy=http://etc.proxy:2222\n');
    assert.equal(viaProxy(resolveProxy(AUTO, h, HTTP_TARGET)).host, 'env.proxy');
    // An empty value in the process environment does not hide /etc/environment.
    const blank = env({ https_proxy: '' }, 'https_proxy=http://etc.proxy:2222\n');
    assert.equal(viaProxy(resolveProxy(AUTO, blank, HTTPS_TARGET)).host, 'etc.proxy');
  });

  test('https targets prefer https_proxy, then HTTPS_PROXY, then http_proxy', () => {
    const all = {
      https_proxy: 'http://lower-https:1',
      HTTPS_PROXY: 'http://upper-https:2',
      http_proxy: 'http://lower-http:3',
      HTTP_PROXY: 'http://upper-http:4',
    };
    assert.equal(viaProxy(resolveProxy(AUTO, env(all), HTTPS_TARGET)).host, 'lower-https');
    const { https_proxy: _a, ...noLower } = all;
    assert.equal(viaProxy(resolveProxy(AUTO, env(noLower), HTTPS_TARGET)).host, 'upper-https');
    const { HTTPS_PROXY: _b, ...onlyHttp } = noLower;
    assert.equal(viaProxy(resolveProxy(AUTO, env(onlyHttp), HTTPS_TARGET)).host, 'lower-http');
    const { http_proxy: _c, ...onlyUpperHttp } = onlyHttp;
    assert.equal(viaProxy(resolveProxy(AUTO, env(onlyUpperHttp), HTTPS_TARGET)).host, 'upper-http');
  });

  test('http targets ignore https_proxy', () => {
    const e = env({ https_proxy: 'http://secure.proxy:3129', HTTPS_PROXY: 'http://secure.proxy:3129' });
    direct(resolveProxy(AUTO, e, HTTP_TARGET));
    const both = env({ https_proxy: 'http://secure.proxy:3129', http_proxy: 'http://plain.proxy:3128' });
    assert.equal(viaProxy(resolveProxy(AUTO, both, HTTP_TARGET)).host, 'plain.proxy');
    const upper = env({ HTTP_PROXY: 'http://upper.proxy:3128' });
    assert.equal(viaProxy(resolveProxy(AUTO, upper, HTTP_TARGET)).host, 'upper.proxy');
  });

  test('no_proxy excludes targets: domain suffix, leading dot, IP, CIDR, host:port, *', () => {
    const p = 'http://proxy.lan:3128';
    const route = (noProxy: string, target: string, where: 'env' | 'etc' = 'env') =>
      resolveProxy(
        AUTO,
        where === 'env'
          ? env({ https_proxy: p, http_proxy: p, no_proxy: noProxy })
          : env({ https_proxy: p }, `no_proxy=${noProxy}\n`),
        target,
      );
    assert.match(
      direct(route('warden.example', HTTPS_TARGET)),
      /updates\.warden\.example is excluded by no_proxy in the process environment/,
    );
    assert.match(
      direct(route('.warden.example', HTTPS_TARGET, 'etc')),
      /excluded by no_proxy in \/etc\/environment/,
    );
    viaProxy(route('other.example', HTTPS_TARGET));
    direct(route('10.0.0.5', 'https://10.0.0.5/enrol'));
    viaProxy(route('10.0.0.5', 'https://10.0.0.6/enrol'));
    direct(route('10.0.0.0/8', 'https://10.200.1.1/enrol'));
    viaProxy(route('10.0.0.0/8', 'https://192.0.2.1/enrol'));
    direct(route('[2001:db8::1]', 'https://[2001:db8::1]/enrol'));
    // host:port compares with the target's effective port (443 for https, 80 for http).
    direct(route('updates.warden.example:443', HTTPS_TARGET));
    viaProxy(route('updates.warden.example:8443', HTTPS_TARGET));
    direct(route('feed.warden.example:80', HTTP_TARGET));
    direct(route('updates.warden.example:8443', 'https://updates.warden.example:8443/x'));
    direct(route('*', HTTPS_TARGET));
    direct(route('*', HTTP_TARGET));
  });

  test('NO_PROXY (upper case) works too', () => {
    const e = env({ HTTPS_PROXY: 'http://proxy.lan:3128', NO_PROXY: '.example' });
    assert.match(direct(resolveProxy(AUTO, e, HTTPS_TARGET)), /NO_PROXY/);
  });

  test('an unusable proxy value means direct, and says why', () => {
    const because = direct(resolveProxy(AUTO, env({ https_proxy: 'ftp://proxy.lan' }), HTTPS_TARGET));
    assert.match(
      because,
      /https_proxy in the process environment \("ftp:\/\/proxy\.lan"\) is not a proxy URL/,
    );
  });

  test('proxy without a port uses the scheme default', () => {
    assert.equal(viaProxy(resolveProxy(AUTO, env({ https_proxy: 'proxy.lan' }), HTTPS_TARGET)).port, 80);
    assert.equal(
      viaProxy(resolveProxy(AUTO, env({ https_proxy: 'https://proxy.lan' }), HTTPS_TARGET)).port,
      443,
    );
  });

  test('mode direct ignores the environment', () => {
    const e = env({ https_proxy: 'http://proxy.lan:3128' }, 'https_proxy=http://etc.proxy:1\n');
    assert.match(direct(resolveProxy({ mode: 'direct', url: '' }, e, HTTPS_TARGET)), /proxy\.mode is direct/);
    assert.match(
      direct(resolveProxy({ mode: 'direct', url: 'http://p:1' }, e, HTTP_TARGET)),
      /proxy\.mode is direct/,
    );
  });

  test('mode manual uses proxy.url and ignores the environment and no_proxy', () => {
    const e = env({ https_proxy: 'http://env.proxy:1', no_proxy: '*' });
    const r = viaProxy(resolveProxy({ mode: 'manual', url: 'http://manual.proxy:3128' }, e, HTTPS_TARGET));
    assert.deepEqual(
      { host: r.host, port: r.port, url: r.url },
      { host: 'manual.proxy', port: 3128, url: 'http://manual.proxy:3128' },
    );
    assert.match(r.because, /proxy\.mode is manual/);
    assert.equal(
      viaProxy(resolveProxy({ mode: 'manual', url: 'http://manual.proxy' }, e, HTTP_TARGET)).port,
      80,
    );
    assert.match(direct(resolveProxy({ mode: 'manual', url: 'ftp://x' }, e, HTTPS_TARGET)), /is not usable/);
  });
});
