import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { createSealer } from '../../src/lib/seal.ts';

const key = Buffer.alloc(32, 7);
const sealer = createSealer(key);

/** Flips one bit of byte `index` (negative: from the end) of part 1 (IV) or 2 (ciphertext||tag). */
function flip(sealed: string, part: 1 | 2, index: number): string {
  const parts = sealed.split('.');
  const bytes = Buffer.from(parts[part]!, 'base64url');
  const i = index < 0 ? bytes.length + index : index;
  bytes[i] = bytes[i]! ^ 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

describe('seal (AES-256-GCM)', () => {
  it('round-trips a string, including non-ASCII', () => {
    const text = 'JBSWY3DPEHPK3PXP — clé ✓';
    const sealed = sealer.seal(text, 'factor:1');
    expect(sealer.openString(sealed, 'factor:1')).to.equal(text);
    expect(sealer.open(sealed, 'factor:1').equals(Buffer.from(text, 'utf8'))).to.equal(true);
  });

  it('round-trips binary data with every byte value', () => {
    const data = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expect(sealer.open(sealer.seal(data)).equals(data)).to.equal(true);
  });

  it('round-trips an empty plaintext', () => {
    expect(sealer.openString(sealer.seal(''))).to.equal('');
  });

  it('has the format v1.<12-byte iv>.<ciphertext + 16-byte tag>', () => {
    const [version, iv, body, ...rest] = sealer.seal('hello').split('.');
    expect(version).to.equal('v1');
    expect(Buffer.from(iv!, 'base64url')).to.have.length(12);
    expect(Buffer.from(body!, 'base64url')).to.have.length(5 + 16);
    expect(rest).to.deep.equal([]);
  });

  it('does not reveal the plaintext', () => {
    const sealed = sealer.seal('JBSWY3DPEHPK3PXP');
    expect(sealed).not.to.include('JBSWY3DPEHPK3PXP');
    expect(sealed).not.to.include(Buffer.from('JBSWY3DPEHPK3PXP').toString('base64url').slice(0, 12));
  });

  it('gives a different result each time for the same plaintext (random IV)', () => {
    const sealed = Array.from({ length: 20 }, () => sealer.seal('same', 'ctx'));
    expect(new Set(sealed).size).to.equal(20);
    expect(new Set(sealed.map((s) => s.split('.')[1])).size).to.equal(20);
    for (const s of sealed) expect(sealer.openString(s, 'ctx')).to.equal('same');
  });

  describe('tampering is detected', () => {
    const sealed = sealer.seal('a secret worth protecting', 'factor:1');

    it('a flipped ciphertext byte', () => {
      expect(() => sealer.open(flip(sealed, 2, 0), 'factor:1')).to.throw('sealed value failed authentication');
    });

    it('a flipped tag byte', () => {
      expect(() => sealer.open(flip(sealed, 2, -1), 'factor:1')).to.throw('sealed value failed authentication');
    });

    it('a flipped IV byte', () => {
      expect(() => sealer.open(flip(sealed, 1, 0), 'factor:1')).to.throw('sealed value failed authentication');
    });

    it('a truncated tag', () => {
      const [v, iv, body] = sealed.split('.');
      const short = Buffer.from(body!, 'base64url').subarray(0, -1).toString('base64url');
      expect(() => sealer.open(`${v}.${iv}.${short}`, 'factor:1')).to.throw('sealed value failed authentication');
    });

    it('the untouched value still opens', () => {
      expect(sealer.openString(sealed, 'factor:1')).to.equal('a secret worth protecting');
    });
  });

  it('does not open under another key', () => {
    const sealed = sealer.seal('secret');
    expect(() => createSealer(randomBytes(32)).open(sealed)).to.throw('sealed value failed authentication');
    const almost = Buffer.from(key);
    almost[31] = almost[31]! ^ 0x80;
    expect(() => createSealer(almost).open(sealed)).to.throw('sealed value failed authentication');
  });

  it('does not open under another context (authenticated data)', () => {
    const sealed = sealer.seal('secret', 'factor:1');
    expect(() => sealer.open(sealed, 'factor:2')).to.throw('sealed value failed authentication');
    expect(() => sealer.open(sealed)).to.throw('sealed value failed authentication');
    expect(() => sealer.open(sealer.seal('secret'), 'factor:1')).to.throw('sealed value failed authentication');
  });

  describe('malformed input is rejected', () => {
    const sealed = sealer.seal('secret');
    const [, iv, body] = sealed.split('.');
    const cases: Array<[string, string]> = [
      ['empty', ''],
      ['another version', `v2.${iv}.${body}`],
      ['placeholder parts', 'v2.x.y'],
      ['version only', 'v1'],
      ['no body', `v1.${iv}`],
      ['empty IV', `v1..${body}`],
      ['empty body', `v1.${iv}.`],
      ['an extra part', `${sealed}.extra`],
      ['an IV of the wrong length', `v1.${Buffer.alloc(16).toString('base64url')}.${body}`],
      ['a body shorter than the tag', `v1.${iv}.${Buffer.alloc(15).toString('base64url')}`],
      ['garbage', 'not a sealed value'],
    ];
    for (const [name, value] of cases) {
      it(name, () => {
        expect(() => sealer.open(value)).to.throw('sealed value is malformed');
      });
    }
  });

  it('accepts only a 32-byte key', () => {
    for (const length of [0, 16, 24, 31, 33, 64]) {
      expect(() => createSealer(Buffer.alloc(length, 1)), `${length} bytes`).to.throw('the seal key must be 32 bytes');
    }
    expect(() => createSealer(randomBytes(32))).not.to.throw();
  });
});
