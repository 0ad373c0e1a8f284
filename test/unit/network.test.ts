/**
 * Outbound URL checks (SSRF): which addresses count as public, in every
 * textual form an attacker might choose, and which URLs a callback may use.
 */
import { request } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { assertPublicUrl, checkUrl, classifyAddress, guardedLookup, UnsafeUrlError, type ResolveAll } from '../../src/lib/network.ts';

/** A resolver that answers from a table, so no test depends on real DNS. */
const fakeDns = (table: Record<string, string[]>): ResolveAll => async (hostname) => {
  const addresses = table[hostname];
  if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
  return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

async function refused(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(UnsafeUrlError);
    return (err as Error).message;
  }
  throw new Error('expected the URL to be refused');
}

describe('network: address classification', () => {
  const cases: Array<[string, string]> = [
    // IPv4
    ['8.8.8.8', 'public'], ['1.1.1.1', 'public'], ['93.184.216.34', 'public'],
    ['0.0.0.0', 'unspecified'], ['0.1.2.3', 'unspecified'],
    ['10.0.0.1', 'private'], ['10.255.255.255', 'private'],
    ['172.15.255.255', 'public'], ['172.16.0.1', 'private'], ['172.31.255.255', 'private'], ['172.32.0.0', 'public'],
    ['192.168.1.1', 'private'], ['192.169.0.1', 'public'],
    ['127.0.0.1', 'loopback'], ['127.255.0.9', 'loopback'],
    ['169.254.169.254', 'link-local'], ['169.254.0.1', 'link-local'], ['169.255.0.1', 'public'],
    ['100.64.0.1', 'cgnat'], ['100.127.255.255', 'cgnat'], ['100.63.255.255', 'public'], ['100.128.0.0', 'public'],
    ['224.0.0.1', 'multicast'], ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'], ['255.255.255.255', 'reserved'], ['192.0.2.10', 'reserved'], ['198.18.0.1', 'reserved'],
    // IPv6
    ['2606:4700:4700::1111', 'public'], ['2001:4860:4860::8888', 'public'],
    ['::', 'unspecified'], ['::1', 'loopback'], ['0:0:0:0:0:0:0:1', 'loopback'], ['[::1]', 'loopback'],
    ['fc00::1', 'private'], ['fd12:3456:789a::1', 'private'], ['fe80::1', 'link-local'], ['fe80::1%eth0', 'link-local'],
    ['febf:ffff::1', 'link-local'], ['ff02::1', 'multicast'], ['2001:db8::1', 'reserved'],
    // IPv4 inside IPv6 is judged by the IPv4 address
    ['::ffff:127.0.0.1', 'loopback'], ['::ffff:7f00:1', 'loopback'], ['::FFFF:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'link-local'], ['::ffff:a9fe:a9fe', 'link-local'], ['::ffff:8.8.8.8', 'public'],
    ['0:0:0:0:0:ffff:c0a8:0101', 'private'],
    ['64:ff9b::10.0.0.1', 'private'], ['64:ff9b::808:808', 'public'],
    ['2002:7f00:1::', 'loopback'], ['2002:0808:0808::1', 'public'],
    ['::127.0.0.1', 'reserved'],
  ];
  for (const [address, kind] of cases) {
    it(`${address} is ${kind}`, () => expect(classifyAddress(address)).to.equal(kind));
  }

  it('throws for something that is not an IP address', () => {
    expect(() => classifyAddress('example.com')).to.throw(/not an IP address/);
  });
});

describe('network: callback URL checks', () => {
  const production = { allowLoopbackHttp: false, resolve: fakeDns({}) };
  const development = { allowLoopbackHttp: true, resolve: fakeDns({ localhost: ['127.0.0.1', '::1'] }) };

  it('accepts https to a host whose every address is public', async () => {
    const policy = { allowLoopbackHttp: false, resolve: fakeDns({ 'hooks.example': ['93.184.216.34', '2606:4700::1'] }) };
    expect((await assertPublicUrl('https://hooks.example/twofold?x=1', policy)).href).to.equal('https://hooks.example/twofold?x=1');
    expect((await assertPublicUrl('https://8.8.8.8:8443/hook', policy)).port).to.equal('8443');
  });

  it('refuses what is not https, carries credentials or a fragment, or does not parse', async () => {
    const policy = { allowLoopbackHttp: true, resolve: fakeDns({ 'hooks.example': ['93.184.216.34'] }) };
    expect(await refused(assertPublicUrl('http://hooks.example/hook', policy))).to.match(/https/);
    expect(await refused(assertPublicUrl('ftp://hooks.example/hook', policy))).to.match(/https/);
    expect(await refused(assertPublicUrl('https://user:pw@hooks.example/hook', policy))).to.match(/user name or password/);
    expect(await refused(assertPublicUrl('https://hooks.example/hook#x', policy))).to.match(/fragment/);
    expect(await refused(assertPublicUrl('/relative', policy))).to.match(/absolute/);
    expect(await refused(assertPublicUrl(`https://hooks.example/${'a'.repeat(2000)}`, policy))).to.match(/longer/);
  });

  it('refuses IP literals that are not public, in any spelling', async () => {
    for (const url of ['https://10.0.0.1/', 'https://169.254.169.254/latest/meta-data', 'https://[::ffff:127.0.0.1]/', 'https://[::ffff:a9fe:a9fe]/',
      'https://[fd00::1]/', 'https://[fe80::1]/', 'https://0.0.0.0/', 'https://100.64.1.1/', 'https://224.0.0.1/', 'https://0xa.1/']) {
      await refused(assertPublicUrl(url, production));
      await refused(assertPublicUrl(url, development));
    }
    // The URL parser normalises these to 127.0.0.1, which only development allows.
    for (const url of ['https://2130706433/', 'https://0x7f.1/', 'https://127.1/']) {
      expect(new URL(url).hostname).to.equal('127.0.0.1');
      await refused(assertPublicUrl(url, production));
    }
  });

  it('refuses a host name when any of its addresses is not public', async () => {
    const policy = { allowLoopbackHttp: false, resolve: fakeDns({ 'mixed.example': ['93.184.216.34', '10.1.2.3'], 'rebind.example': ['::ffff:169.254.169.254'] }) };
    expect(await refused(assertPublicUrl('https://mixed.example/', policy))).to.match(/private/).and.not.include('10.1.2.3');
    expect(await refused(assertPublicUrl('https://rebind.example/', policy))).to.match(/link-local/);
    expect(await refused(assertPublicUrl('https://nowhere.example/', policy))).to.match(/does not resolve/);
  });

  it('allows loopback (and http to it) only for the loopback names, and only outside production', async () => {
    for (const url of ['http://127.0.0.1:8080/hook', 'http://localhost/hook', 'http://[::1]/hook', 'https://localhost/hook']) {
      await assertPublicUrl(url, development);
      await refused(assertPublicUrl(url, { ...production, resolve: development.resolve }));
    }
    // Another name for loopback is not a loopback name.
    const sneaky = { allowLoopbackHttp: true, resolve: fakeDns({ 'localtest.me': ['127.0.0.1'] }) };
    expect(await refused(assertPublicUrl('https://localtest.me/', sneaky))).to.match(/loopback/);
    expect(await refused(assertPublicUrl('http://localtest.me/', sneaky))).to.match(/https/);
    // localhost may not be pointed elsewhere private.
    await refused(assertPublicUrl('http://localhost/', { allowLoopbackHttp: true, resolve: fakeDns({ localhost: ['10.0.0.1'] }) }));
  });

  it('checkUrl checks literals without DNS, leaving names to the connection-time lookup', () => {
    expect(() => checkUrl('https://10.0.0.1/', production)).to.throw(UnsafeUrlError);
    expect(checkUrl('https://hooks.example/', production).hostname).to.equal('hooks.example');
  });
});

describe('network: guarded lookup', () => {
  it('lets a socket connect only to an address it checked', async () => {
    const server = createServer((_req, res) => res.writeHead(204).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const get = (host: string, allowLoopbackHttp: boolean, resolve: ResolveAll) => new Promise<number>((ok, fail) => {
      const req = request({ host, port, path: '/', agent: false, lookup: guardedLookup({ allowLoopbackHttp, resolve }) }, (res) => {
        res.resume();
        ok(res.statusCode ?? 0);
      });
      req.on('error', fail);
      req.end();
    });
    try {
      const dns = fakeDns({ localhost: ['127.0.0.1'], 'rebound.example': ['127.0.0.1'] });
      expect(await get('localhost', true, dns)).to.equal(204);
      const err = await get('rebound.example', true, dns).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(UnsafeUrlError);
      const prod = await get('localhost', false, dns).then(() => undefined, (e: unknown) => e);
      expect(prod).to.be.instanceOf(UnsafeUrlError);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
