import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);
const doc = readFileSync(new URL('docs/security.md', root), 'utf8');
/** `test/x.test.ts` — "title", "title" … as the doc cites them. */
const citations = [...doc.matchAll(/`(test\/[\w/.-]+\.ts)`(?: — ((?:"[^"]+"(?:, )?)+))?/g)];

describe('docs/security.md', () => {
  it('cites only test files and test titles that exist', () => {
    expect(citations.length).toBeGreaterThan(30);
    let titlesChecked = 0;
    for (const [, file, titles] of citations) {
      expect(existsSync(new URL(file!, root)), file).toBe(true);
      const source = readFileSync(new URL(file!, root), 'utf8').replaceAll("\\'", "'");
      for (const [, title] of (titles ?? '').matchAll(/"([^"]+)"/g)) {
        const t = title!.replace(/\s+/g, ' ');
        const wanted = t.endsWith('…') ? t.slice(0, -1) : t;
        expect(source.includes(wanted), `${file}: "${title}"`).toBe(true);
        titlesChecked += 1;
      }
    }
    expect(titlesChecked).toBeGreaterThan(50); // the titles were read at all (the citation format did not drift)
  });

  it('maps every threat of the model to at least one test', () => {
    const sections = doc.split(/^### /m).slice(1);
    expect(sections.map((s) => s.split('\n')[0])).toEqual([
      '1. Compromised foreign CA',
      '2. Stolen token',
      '3. Spoofed headers',
      '4. Confused deputy via act chains',
      '5. SSRF via token headers',
      '6. Denial of service by expensive inputs',
      "7. Policy bypass through the request's shape",
    ]);
    for (const s of sections) expect(s).toMatch(/Tests: `test\//);
  });
});
