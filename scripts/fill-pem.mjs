#!/usr/bin/env node
// Replaces the placeholder certificate in a manifest of docs/integrations/ with a real PEM,
// keeping the placeholder's indentation (YAML block scalars), and prints the result:
//   node scripts/fill-pem.mjs docs/integrations/istio/istiod-values.yaml zone-b-root.pem > istiod-values.yaml
// The placeholder is the three lines BEGIN CERTIFICATE / REPLACE-WITH-ZONE-B-ROOT / END CERTIFICATE.
import { readFileSync } from 'node:fs';

const [file, pemFile] = process.argv.slice(2);
if (!file || !pemFile) {
  console.error('usage: node scripts/fill-pem.mjs MANIFEST PEM-FILE > OUT');
  process.exit(2);
}
const pem = readFileSync(pemFile, 'utf8').trim();
if (!/^-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----$/.test(pem)) {
  console.error(`fill-pem: ${pemFile} is not PEM certificates`);
  process.exit(2);
}
const placeholder = /^([ \t]*)-----BEGIN CERTIFICATE-----\r?\n[ \t]*REPLACE-WITH-ZONE-B-ROOT\r?\n[ \t]*-----END CERTIFICATE-----$/gm;
const text = readFileSync(file, 'utf8');
let count = 0;
const out = text.replace(placeholder, (_m, indent) => {
  count++;
  return pem.split('\n').map((line) => indent + line.trimEnd()).join('\n');
});
if (count === 0) {
  console.error(`fill-pem: no placeholder in ${file}`);
  process.exit(1);
}
process.stdout.write(out);
