// Starts Debian's chromium through playwright-core: headless, no sandbox (containers and CI run as root),
// nothing fetched in the background, a fresh profile that is removed afterwards.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];

/** A persistent context on a fresh user-data-dir; close() also deletes the directory. */
export async function launch({ width = 1280, height = 860 } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'ring-serve-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width, height }, colorScheme: 'light',
    reducedMotion: 'reduce',
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
