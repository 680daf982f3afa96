/**
 * The protoc-gen-validate rules Envoy enforces when it loads a config, for the cases a hand
 * written config gets wrong: a required message or oneof left out, an empty string or list where
 * one is needed. Read from the `(validate.rules)` and `(validate.required)` options of the
 * descriptor set itself, into every nested message, list, map and Any.
 */
import { getOption, hasOption, type DescExtension, type DescField, type Registry } from '@bufbuild/protobuf';
import { reflect, type ReflectMessage } from '@bufbuild/protobuf/reflect';
import { anyUnpack, type Any } from '@bufbuild/protobuf/wkt';

interface Rules {
  message?: { required?: boolean };
  type: { case: string | undefined; value?: Record<string, unknown> };
}

const num = (v: unknown) => (v === undefined ? undefined : Number(v));

/** What the validate rules reject in `msg` (empty: nothing); paths use proto field names. */
export function pgvProblems(msg: ReflectMessage, registry: Registry, path = ''): string[] {
  const rulesExt = registry.getExtension('validate.rules') as DescExtension | undefined;
  const requiredExt = registry.getExtension('validate.required') as DescExtension | undefined;
  if (!rulesExt || !requiredExt) throw new Error('the descriptor set lacks validate.rules / validate.required');
  const out: string[] = [];
  const walk = (m: ReflectMessage, at: string): void => {
    if (m.desc.typeName === 'google.protobuf.Any') {
      const inner = anyUnpack(m.message as unknown as Any, registry);
      if (inner) walk(reflect(registry.getMessage(inner.$typeName)!, inner), at);
      return;
    }
    for (const oneof of m.desc.oneofs) {
      if (hasOption(oneof, requiredExt) && getOption(oneof, requiredExt) === true && !oneof.fields.some((f) => m.isSet(f)))
        out.push(`${at || '(top level)'}: one of ${oneof.fields.map((f) => f.name).join(', ')} is required`);
    }
    for (const field of m.desc.fields) {
      const p = at ? `${at}.${field.name}` : field.name;
      const set = m.isSet(field);
      // A member of a oneof is checked only when it is the member set (PGV's semantics).
      if (field.oneof && !set) continue;
      if (hasOption(field, rulesExt)) check(m, field, getOption(field, rulesExt) as unknown as Rules, set, p, out);
      if (!set) continue;
      descend(m, field, p, walk);
    }
  };
  walk(msg, path);
  return out;
}

function check(m: ReflectMessage, field: DescField, rules: Rules, set: boolean, p: string, out: string[]): void {
  if (rules.message?.required && !set) out.push(`${p}: is required`);
  const r = rules.type.value ?? {};
  switch (rules.type.case) {
    case 'string': {
      if (field.fieldKind !== 'scalar') return;
      const v = set ? String(m.get(field)) : '';
      if (v === '' && r.ignoreEmpty === true) return;
      const min = num(r.minLen) ?? num(r.minBytes);
      if (min !== undefined && [...v].length < min) out.push(`${p}: must be at least ${min} character(s)`);
      return;
    }
    case 'repeated': {
      if (field.fieldKind !== 'list') return;
      const min = num(r.minItems);
      if (min !== undefined && m.get(field).size < min) out.push(`${p}: needs at least ${min} item(s)`);
      return;
    }
    case 'map': {
      if (field.fieldKind !== 'map') return;
      const min = num(r.minPairs);
      if (min !== undefined && m.get(field).size < min) out.push(`${p}: needs at least ${min} entr(y/ies)`);
      return;
    }
    case 'any':
    case 'duration':
    case 'timestamp':
      if ((r as { required?: boolean }).required && !set) out.push(`${p}: is required`);
      return;
    default:
  }
}

function descend(m: ReflectMessage, field: DescField, p: string, walk: (m: ReflectMessage, at: string) => void): void {
  if (field.fieldKind === 'message') walk(m.get(field), p);
  else if (field.fieldKind === 'list' && field.listKind === 'message') {
    let i = 0;
    for (const item of m.get(field)) walk(item as ReflectMessage, `${p}[${i++}]`);
  } else if (field.fieldKind === 'map' && field.mapKind === 'message') {
    for (const [k, v] of m.get(field)) walk(v as ReflectMessage, `${p}[${String(k)}]`);
  }
}
