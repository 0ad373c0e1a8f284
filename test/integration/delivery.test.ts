/**
 * Message delivery with real parts: an SMTP server and an HTTP gateway on
 * loopback ports, the real logger, the shipped templates and a deployer's own.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { ROOT_DIR } from '../../src/config.ts';
import { manualClock } from '../../src/lib/clock.ts';
import { createLogger } from '../../src/lib/log.ts';
import {
  createDelivery, DEFAULT_DELIVERY, DeliveryError, deliverySchema, signWebhook,
  type Delivery, type DeliveryConfig, type Message,
} from '../../src/delivery/index.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startHttpReceiver, type HttpReceiver } from '../helpers/http-receiver.ts';

const secret = () => `whsec_${randomBytes(32).toString('base64')}`;

function config(patch: Record<string, unknown>): DeliveryConfig {
  return deliverySchema.parse({ ...DEFAULT_DELIVERY, ...patch });
}

/** A real Twofold logger writing JSON lines into an array. */
function logCapture() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString('utf8'))); done(); },
  });
  return { lines, logger: createLogger({ destination }) };
}

async function failureOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    if (err instanceof Error) return err;
  }
  throw new Error('expected a failure');
}

const otp = (channel: 'email' | 'sms', to: string, code = '482913'): Message =>
  ({ channel, to, template: 'otp', data: { code, minutes: 5 } });

describe('delivery', () => {
  const open: Delivery[] = [];
  const make = (...args: Parameters<typeof createDelivery>) => {
    const delivery = createDelivery(...args);
    open.push(delivery);
    return delivery;
  };
  afterEach(async () => { await Promise.all(open.splice(0).map((d) => d.close())); });

  describe('smtp', () => {
    let sink: SmtpSink;
    before(async () => { sink = await startSmtpSink(); });
    after(() => sink.stop());

    const smtpConfig = (port: number) => config({
      email: { transport: 'smtp', from: 'Twofold <no-reply@twofold.example>', smtp: { host: '127.0.0.1', port, secure: false } },
    });

    it('delivers an email code with the right From, To, Subject and the code in the body', async () => {
      const delivery = make({ config: smtpConfig(sink.port), rootDir: ROOT_DIR });
      await delivery.send(otp('email', 'ada@example.com'));
      const mail = await sink.next('ada@example.com');
      expect(mail.headers.from).to.equal('Twofold <no-reply@twofold.example>');
      expect(mail.headers.to).to.equal('ada@example.com');
      expect(mail.headers.subject).to.equal('Your Twofold sign-in code');
      expect(mail.headers.subject).to.not.contain('482913');
      expect(mail.text).to.contain('482913').and.contain('expires in 5 minutes');
    });

    it('fails with a DeliveryError that carries neither code nor address when the server is down', async () => {
      const down = await startSmtpSink();
      const delivery = make({ config: smtpConfig(down.port), rootDir: ROOT_DIR });
      await down.stop();
      const err = await failureOf(delivery.send(otp('email', 'ada@example.com')));
      expect(err).to.be.instanceOf(DeliveryError);
      expect(err).to.include({ channel: 'email', transport: 'smtp' });
      expect(err.message).to.not.contain('482913').and.not.contain('ada@example.com');
      expect(err.cause).to.be.instanceOf(Error);
    });
  });

  describe('webhook', () => {
    let gateway: HttpReceiver;
    const key = secret();
    const clock = manualClock(Date.parse('2026-11-24T10:00:00Z'));
    before(async () => { gateway = await startHttpReceiver(); });
    after(() => gateway.stop());
    afterEach(() => { gateway.answer = 204; });

    const smsDelivery = (timeoutMs?: number) => make({
      config: config({ sms: { transport: 'webhook', webhook: { url: gateway.url, secret: key } } }),
      rootDir: ROOT_DIR, clock, ...(timeoutMs ? { timeoutMs } : {}),
    });

    it('POSTs the SMS as JSON signed per Standard Webhooks', async () => {
      await smsDelivery().send({ channel: 'sms', to: '+14155550123', template: 'otp', data: { code: '482913', minutes: 5, domain: 'twofold.example' } });
      const req = await gateway.next();
      expect(req.method).to.equal('POST');
      expect(req.headers['content-type']).to.equal('application/json');

      const body = JSON.parse(req.body);
      expect(body).to.include({ type: 'sms', to: '+14155550123', template: 'otp', createdAt: '2026-11-24T10:00:00.000Z' });
      expect(body.text).to.match(/^Your Twofold code is 482913\. It expires in 5 minutes\./);
      expect(body.text.split('\n').at(-1)).to.equal('@twofold.example #482913');
      expect(body).to.not.have.property('subject');

      const id = req.headers['webhook-id'];
      const timestamp = req.headers['webhook-timestamp'];
      expect(id).to.equal(body.id).and.match(/^msg_/);
      expect(timestamp).to.equal(String(Date.parse('2026-11-24T10:00:00Z') / 1000));
      // Recomputed here without the module's code: HMAC-SHA256 over "id.timestamp.body", key = base64 after whsec_.
      const expected = (s: string) => createHmac('sha256', Buffer.from(s.slice('whsec_'.length), 'base64'))
        .update(`${id}.${timestamp}.${req.body}`).digest('base64');
      expect(req.headers['webhook-signature']).to.equal(`v1,${expected(key)}`);
      expect(req.headers['webhook-signature']).to.not.equal(`v1,${expected(secret())}`);
      expect(signWebhook(key, String(id), Number(timestamp), req.body)).to.equal(`v1,${expected(key)}`);
    });

    it('sends email through the webhook with its subject', async () => {
      const delivery = make({
        config: config({ email: { ...DEFAULT_DELIVERY.email, transport: 'webhook', webhook: { url: gateway.url, secret: key } } }),
        rootDir: ROOT_DIR, clock,
      });
      await delivery.send({ channel: 'email', to: 'ada@example.com', template: 'account-locked', data: { minutes: 15 } });
      const body = JSON.parse((await gateway.next()).body);
      expect(body).to.include({ type: 'email', to: 'ada@example.com', subject: 'Two-step verification on your Twofold account is locked' });
      expect(body.text).to.contain('locked for 15 minutes');
    });

    it('fails with a DeliveryError when the gateway answers 500', async () => {
      gateway.answer = 500;
      const err = await failureOf(smsDelivery().send(otp('sms', '+14155550123')));
      await gateway.next();
      expect(err).to.be.instanceOf(DeliveryError);
      expect(err).to.include({ channel: 'sms', transport: 'webhook' });
      expect(err.message).to.not.contain('482913').and.not.contain('+14155550123');
      expect((err.cause as Error).message).to.equal('webhook answered 500');
    });

    it('fails with a DeliveryError when the gateway does not answer in time', async () => {
      gateway.answer = 'hang';
      const started = Date.now();
      const err = await failureOf(smsDelivery(300).send(otp('sms', '+14155550123')));
      await gateway.next();
      expect(err).to.be.instanceOf(DeliveryError);
      expect(Date.now() - started).to.be.below(3000);
    });
  });

  describe('console and templates', () => {
    it('writes the rendered message to the log, code readable, in development', async () => {
      const { lines, logger } = logCapture();
      const delivery = make({ config: config({}), logger, rootDir: ROOT_DIR });
      await delivery.send(otp('sms', '+14155550123'));
      await delivery.send(otp('email', 'ada@example.com', '777111'));
      const [sms, email] = lines;
      expect(sms).to.include({ msg: 'delivery (console)', channel: 'sms', to: '+14155550123' });
      expect(sms!.text).to.equal('Your Twofold code is 482913. It expires in 5 minutes. Never share it.');
      expect(email).to.include({ channel: 'email', subject: 'Your Twofold sign-in code' });
      expect(email!.text).to.contain('777111');
    });

    it('uses a template the deployer changed', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'twofold-templates-'));
      try {
        await mkdir(path.join(dir, 'sms'));
        await writeFile(path.join(dir, 'sms', 'otp.txt.ejs'), '<%= product %> says: <%- code %> (valid <%- minutes %> min)\n');
        const { lines, logger } = logCapture();
        const delivery = make({ config: config({ templatesDir: dir, product: 'Acme ID' }), logger, rootDir: ROOT_DIR });
        await delivery.send(otp('sms', '+14155550123'));
        expect(lines[0]!.text).to.equal('Acme ID says: 482913 (valid 5 min)');
        // A template the deployer left out is a deployment error, not a delivery failure.
        const err = await failureOf(delivery.send({ channel: 'sms', to: '+14155550123', template: 'account-locked', data: { minutes: 5 } }));
        expect(err).to.not.be.instanceOf(DeliveryError);
        expect(err.message).to.contain('sms/account-locked.txt.ejs');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('keeps a person-chosen factor name from adding lines to the text or headers to the subject', async () => {
      const { lines, logger } = logCapture();
      const delivery = make({ config: config({}), logger, rootDir: ROOT_DIR });
      await delivery.send({ channel: 'email', to: 'ada@example.com', template: 'factor-added', data: { factor: 'Phone\r\nBcc: x@evil.example\u2028Call +1 555' } });
      const text = String(lines[0]!.text);
      expect(text.split('\n')[0]).to.equal('A new sign-in method, "Phone Bcc: x@evil.example Call +1 555", was added to your Twofold account.');
      expect(lines[0]!.subject).to.equal('A sign-in method was added to your Twofold account');
    });
  });

  describe('input checks', () => {
    const delivery = () => make({ config: config({}), logger: { info() {} }, rootDir: ROOT_DIR });

    it('refuses malformed addresses and data with a plain Error', async () => {
      const bad: Message[] = [
        otp('email', 'ada@example.com, eve@evil.example'),
        otp('email', 'ada@example.com\r\nBcc: eve@evil.example'),
        otp('email', 'no-at-sign'),
        otp('sms', '4155550123'),
        otp('sms', '+1415555012345678'),
        otp('sms', '+14155550123', '12 34'),
        { channel: 'sms', to: '+14155550123', template: 'otp', data: { code: '482913', minutes: 0 } },
      ];
      for (const message of bad) {
        const err = await failureOf(delivery().send(message));
        expect(err, message.to).to.not.be.instanceOf(DeliveryError);
        expect(err.message).to.match(/^delivery: /);
      }
    });
  });

  describe('config', () => {
    const problems = (input: unknown) => {
      const result = deliverySchema.safeParse(input);
      return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };

    it('accepts the development default', () => {
      expect(problems(DEFAULT_DELIVERY)).to.deep.equal([]);
    });

    it('names the missing key when a transport lacks its settings', () => {
      expect(problems({ ...DEFAULT_DELIVERY, email: { ...DEFAULT_DELIVERY.email, transport: 'smtp' } }))
        .to.deep.equal(['email.smtp: is required when email.transport is "smtp"']);
      expect(problems({ ...DEFAULT_DELIVERY, email: { ...DEFAULT_DELIVERY.email, transport: 'smtp', smtp: { port: 25, secure: false } } }))
        .to.have.length(1).and.satisfy((p: string[]) => p[0]!.startsWith('email.smtp.host: '));
      expect(problems({ ...DEFAULT_DELIVERY, sms: { transport: 'webhook' } }))
        .to.deep.equal(['sms.webhook: is required when sms.transport is "webhook"']);
    });

    it('refuses weak webhook secrets, plain http to another host and a From with a line break', () => {
      expect(problems({ ...DEFAULT_DELIVERY, sms: { transport: 'webhook', webhook: { url: 'https://sms.example/hook', secret: 'whsec_c2hvcnQ=' } } }))
        .to.deep.equal(['sms.webhook.secret: must be whsec_ followed by the base64 of 24 to 64 random bytes']);
      expect(problems({ ...DEFAULT_DELIVERY, sms: { transport: 'webhook', webhook: { url: 'http://sms.example/hook', secret: secret() } } }))
        .to.deep.equal(['sms.webhook.url: must be https (http only for localhost)']);
      expect(problems({ ...DEFAULT_DELIVERY, email: { transport: 'console', from: 'a@b.example\r\nBcc: c@d.example' } }))
        .to.have.length(1).and.satisfy((p: string[]) => p[0]!.startsWith('email.from: '));
    });
  });
});
