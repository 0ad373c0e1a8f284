/**
 * Message templates: EJS files a deployer may change, under
 * `<templatesDir>/<channel>/<template>.subject.ejs` (email only) and
 * `<template>.txt.ejs`. Each file is read and compiled at first use, then
 * cached for the life of the process.
 *
 * Templates are plain text, so `<%= %>` does not HTML-escape: it replaces
 * control characters and line breaks with a space, which keeps a value
 * from adding lines to a text or headers to a subject. `<%- %>` prints a
 * value as it is and is only for data that was validated (the code, minutes).
 * Templates are code the deployer trusts, like the views.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ejs, { type TemplateFunction } from 'ejs';
import type { Channel, TemplateName } from './messages.ts';

export interface Rendered {
  subject?: string;
  text: string;
}

/** C0/C1 controls, line and paragraph separators, bidi overrides. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]+/g;

/** `<%= %>` for plain text. */
export function escapeText(value: unknown): string {
  return String(value ?? '').replace(UNSAFE, ' ');
}

export interface Templates {
  /**
   * Renders one message with `data` plus `product`.
   * @throws Error when a template file is missing or fails to render (a deployment error).
   */
  render(channel: Channel, template: TemplateName, data: Record<string, unknown>): Promise<Rendered>;
}

/** Templates read from `dir`. */
export function createTemplates(dir: string, product: string): Templates {
  const cache = new Map<string, Promise<TemplateFunction>>();

  function load(file: string): Promise<TemplateFunction> {
    let compiled = cache.get(file);
    if (!compiled) {
      compiled = readFile(path.join(dir, file), 'utf8').then((source) =>
        ejs.compile(source, { filename: path.join(dir, file), escape: escapeText, async: false }) as TemplateFunction);
      // A missing file is not cached, so a deployer can add it without a restart.
      compiled.catch(() => cache.delete(file));
      cache.set(file, compiled);
    }
    return compiled;
  }

  async function run(file: string, locals: Record<string, unknown>): Promise<string> {
    const fn = await load(file).catch((cause: unknown) => {
      throw new Error(`delivery: cannot read template ${file} in ${dir}`, { cause });
    });
    try {
      return fn(locals);
    } catch (cause) {
      throw new Error(`delivery: template ${file} failed to render`, { cause });
    }
  }

  return {
    async render(channel, template, data) {
      const locals = { ...data, product };
      const text = (await run(`${channel}/${template}.txt.ejs`, locals)).trim();
      if (channel === 'sms') return { text };
      // A subject is one line however the template was written.
      const subject = (await run(`${channel}/${template}.subject.ejs`, locals)).replace(/\s+/g, ' ').trim();
      return { subject, text };
    },
  };
}
