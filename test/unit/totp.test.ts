import { expect } from 'chai';
import {
  generateTotp, generateTotpSecret, totpQrDataUrl, totpQrPng, totpUri, verifyTotp,
  type TotpAlgorithm, type TotpSettings,
} from '../../src/mfa/factors/totp.ts';

const ascii = (s: string) => new TextEncoder().encode(s);
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32Decode(s: string): Buffer {
  let bits = '';
  for (const ch of s) {
    const v = BASE32_ALPHABET.indexOf(ch);
    if (v < 0) throw new Error(`not base32: ${ch}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const bytes = bits.match(/.{8}/g) ?? [];
  return Buffer.from(bytes.map((b) => parseInt(b, 2)));
}

describe('TOTP primitives', () => {
  describe('RFC 6238 Appendix B vectors (8 digits, 30 s, errata 2866 seeds)', () => {
    const seeds: Record<TotpAlgorithm, Uint8Array> = {
      SHA1: ascii('12345678901234567890'),
      SHA256: ascii('12345678901234567890123456789012'),
      SHA512: ascii('1234567890123456789012345678901234567890123456789012345678901234'),
    };
    const vectors: Array<[number, Record<TotpAlgorithm, string>]> = [
      [59, { SHA1: '94287082', SHA256: '46119246', SHA512: '90693936' }],
      [1111111109, { SHA1: '07081804', SHA256: '68084774', SHA512: '25091201' }],
      [1111111111, { SHA1: '14050471', SHA256: '67062674', SHA512: '99943326' }],
      [1234567890, { SHA1: '89005924', SHA256: '91819424', SHA512: '93441116' }],
      [2000000000, { SHA1: '69279037', SHA256: '90698825', SHA512: '38618901' }],
      [20000000000, { SHA1: '65353130', SHA256: '77737706', SHA512: '47863826' }],
    ];

    for (const algorithm of ['SHA1', 'SHA256', 'SHA512'] as const) {
      const settings: TotpSettings = { algorithm, digits: 8, period: 30 };
      for (const [t, codes] of vectors) {
        const expected = codes[algorithm];
        it(`${algorithm} at T=${t} generates ${expected} and verifies it at step ${Math.floor(t / 30)}`, async () => {
          const secret = seeds[algorithm];
          expect(await generateTotp({ secret, settings, nowMs: t * 1000 })).to.equal(expected);
          expect(await verifyTotp({ secret, code: expected, settings, window: 0, nowMs: t * 1000, afterTimeStep: null }))
            .to.equal(Math.floor(t / 30));
        });
      }
    }

    it('accepts the same seed as a base32 string', async () => {
      const settings: TotpSettings = { algorithm: 'SHA1', digits: 8, period: 30 };
      const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
      expect(base32Decode(secret).toString('ascii')).to.equal('12345678901234567890');
      expect(await generateTotp({ secret, settings, nowMs: 59_000 })).to.equal('94287082');
      expect(await verifyTotp({ secret, code: '94287082', settings, window: 0, nowMs: 59_000, afterTimeStep: null })).to.equal(1);
    });

    it('rejects a vector code at a time outside its step', async () => {
      const settings: TotpSettings = { algorithm: 'SHA1', digits: 8, period: 30 };
      expect(await verifyTotp({
        secret: seeds.SHA1, code: '89005924', settings, window: 0, nowMs: 1234567890_000 + 30_000, afterTimeStep: null,
      })).to.equal(null);
    });
  });

  describe('verifyTotp', () => {
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    const settings: TotpSettings = { algorithm: 'SHA1', digits: 6, period: 30 };
    const step = 56_666_667;
    const nowMs = step * 30_000 + 15_000;
    const codeAt = (s: number) => generateTotp({ secret, settings, nowMs: s * 30_000 + 1_000 });
    const check = (code: string, window: number, afterTimeStep: number | null = null) =>
      verifyTotp({ secret, code, settings, window, nowMs, afterTimeStep });

    it('returns the current step for the current code with window 0', async () => {
      expect(await check(await codeAt(step), 0)).to.equal(step);
    });

    it('accepts the previous and next step with window 1 and reports which step matched', async () => {
      expect(await check(await codeAt(step - 1), 1)).to.equal(step - 1);
      expect(await check(await codeAt(step + 1), 1)).to.equal(step + 1);
    });

    it('rejects the previous and next step with window 0', async () => {
      expect(await check(await codeAt(step - 1), 0)).to.equal(null);
      expect(await check(await codeAt(step + 1), 0)).to.equal(null);
    });

    it('rejects codes two steps away with window 1', async () => {
      expect(await check(await codeAt(step - 2), 1)).to.equal(null);
      expect(await check(await codeAt(step + 2), 1)).to.equal(null);
    });

    it('rejects a wrong code', async () => {
      const good = await codeAt(step);
      const wrong = String((Number(good) + 1) % 1_000_000).padStart(6, '0');
      expect(await check(wrong, 1)).to.equal(null);
    });

    it('uses the period: with 60 s steps the step is floor(t / 60)', async () => {
      const s60: TotpSettings = { algorithm: 'SHA256', digits: 6, period: 60 };
      const t = 1_700_000_000_000;
      const code = await generateTotp({ secret, settings: s60, nowMs: t });
      expect(await verifyTotp({ secret, code, settings: s60, window: 0, nowMs: t + 19_000, afterTimeStep: null }))
        .to.equal(Math.floor(t / 60_000));
      expect(await verifyTotp({ secret, code, settings: s60, window: 0, nowMs: t + 60_000, afterTimeStep: null })).to.equal(null);
    });

    describe('afterTimeStep (replay)', () => {
      it('rejects the step already accepted', async () => {
        expect(await check(await codeAt(step), 1, step)).to.equal(null);
      });

      it('rejects an earlier step still inside the window', async () => {
        expect(await check(await codeAt(step - 1), 1, step)).to.equal(null);
        expect(await check(await codeAt(step - 1), 1, step - 1)).to.equal(null);
      });

      it('accepts a later step', async () => {
        expect(await check(await codeAt(step), 1, step - 1)).to.equal(step);
        expect(await check(await codeAt(step + 1), 1, step)).to.equal(step + 1);
      });

      it('returns null, not an error, when the last step lies beyond the window (clock went back)', async () => {
        expect(await check(await codeAt(step), 1, step + 1)).to.equal(null);
        expect(await check(await codeAt(step), 1, step + 100)).to.equal(null);
        expect(await check(await codeAt(step), 0, step + 1)).to.equal(null);
      });
    });

    describe('malformed codes are rejected without throwing', () => {
      let good = '';
      before(async () => { good = await codeAt(step); });

      const variants: Array<[string, (c: string) => string]> = [
        ['empty', () => ''],
        ['too short', (c) => c.slice(0, 5)],
        ['too long', (c) => `${c}0`],
        ['leading space', (c) => ` ${c}`],
        ['trailing space', (c) => `${c} `],
        ['trailing newline', (c) => `${c}\n`],
        ['inner space', (c) => `${c.slice(0, 3)} ${c.slice(3)}`],
        ['a letter', (c) => `${c.slice(0, 5)}a`],
        ['a sign', (c) => `-${c.slice(1)}`],
        ['full-width digits', (c) => [...c].map((d) => String.fromCharCode(0xff10 + Number(d))).join('')],
        ['Arabic-Indic digits', (c) => [...c].map((d) => String.fromCharCode(0x0660 + Number(d))).join('')],
      ];
      for (const [name, mangle] of variants) {
        it(name, async () => {
          expect(await check(mangle(good), 1)).to.equal(null);
        });
      }

      it('the six-digit code for an eight-digit factor (its last six digits)', async () => {
        const eight: TotpSettings = { algorithm: 'SHA1', digits: 8, period: 30 };
        const full = await generateTotp({ secret, settings: eight, nowMs });
        expect(full.slice(2)).to.equal(await generateTotp({ secret, settings, nowMs }));
        expect(await verifyTotp({ secret, code: full.slice(2), settings: eight, window: 1, nowMs, afterTimeStep: null })).to.equal(null);
        expect(await verifyTotp({ secret, code: full, settings: eight, window: 1, nowMs, afterTimeStep: null })).to.equal(step);
      });
    });

    it('throws for a window otplib cannot honour (a server fault, not a user error)', async () => {
      for (const window of [-1, 0.5, 50]) {
        let error: unknown;
        try { await check('000000', window); } catch (e) { error = e; }
        expect(error, `window ${window}`).to.be.instanceOf(Error);
      }
    });
  });

  describe('generateTotpSecret', () => {
    it('is unpadded base32 of 20 bytes (160 bits)', () => {
      const secret = generateTotpSecret();
      expect(secret).to.match(/^[A-Z2-7]{32}$/);
      expect(base32Decode(secret)).to.have.length(20);
    });

    it('differs every time', () => {
      const secrets = new Set(Array.from({ length: 50 }, generateTotpSecret));
      expect(secrets.size).to.equal(50);
    });
  });

  describe('totpUri', () => {
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    const settings: TotpSettings = { algorithm: 'SHA256', digits: 8, period: 60 };

    it('follows the Key Uri Format with the issuer in the label and as a parameter', () => {
      const uri = totpUri({ secret, settings, issuer: 'Twofold Test', accountName: 'alice+mfa@example.com' });
      expect(uri).to.equal('otpauth://totp/Twofold%20Test:alice%2Bmfa%40example.com'
        + '?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Twofold%20Test&algorithm=SHA256&digits=8&period=60');
      const url = new URL(uri);
      expect(url.protocol).to.equal('otpauth:');
      expect(url.host).to.equal('totp');
      expect(decodeURIComponent(url.pathname)).to.equal('/Twofold Test:alice+mfa@example.com');
      expect(Object.fromEntries(url.searchParams)).to.deep.equal({
        secret, issuer: 'Twofold Test', algorithm: 'SHA256', digits: '8', period: '60',
      });
    });

    it('writes the defaults out too', () => {
      const url = new URL(totpUri({ secret, settings: { algorithm: 'SHA1', digits: 6, period: 30 }, issuer: 'Twofold', accountName: 'bob' }));
      expect(url.pathname).to.equal('/Twofold:bob');
      expect([...url.searchParams.keys()]).to.deep.equal(['secret', 'issuer', 'algorithm', 'digits', 'period']);
      expect(url.searchParams.get('algorithm')).to.equal('SHA1');
      expect(url.searchParams.get('digits')).to.equal('6');
      expect(url.searchParams.get('period')).to.equal('30');
    });

    it('refuses a colon or an empty value in the issuer or account name', () => {
      expect(() => totpUri({ secret, settings, issuer: 'Two:fold', accountName: 'bob' })).to.throw(/issuer/);
      expect(() => totpUri({ secret, settings, issuer: 'Twofold', accountName: 'bo:b' })).to.throw(/account name/);
      expect(() => totpUri({ secret, settings, issuer: '', accountName: 'bob' })).to.throw(/issuer/);
      expect(() => totpUri({ secret, settings, issuer: 'Twofold', accountName: '' })).to.throw(/account name/);
    });
  });

  describe('QR codes', () => {
    const uri = 'otpauth://totp/Twofold:bob?secret=JBSWY3DPEHPK3PXP&issuer=Twofold&algorithm=SHA1&digits=6&period=30';

    it('renders a PNG data URL', async () => {
      const dataUrl = await totpQrDataUrl(uri);
      expect(dataUrl.startsWith('data:image/png;base64,')).to.equal(true);
      const png = Buffer.from(dataUrl.slice('data:image/png;base64,'.length), 'base64');
      expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).to.equal(true);
    });

    it('renders a PNG buffer', async () => {
      const png = await totpQrPng(uri);
      expect(Buffer.isBuffer(png)).to.equal(true);
      expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).to.equal(true);
      expect(png.length).to.be.greaterThan(100);
    });
  });
});
