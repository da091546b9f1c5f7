/**
 * A safe, allow-list unpickler: only the opcodes that `torch.save` state dicts use (protocols 2–5,
 * no code execution). A global (GLOBAL / STACK_GLOBAL) is accepted only when the caller's allow-list
 * names it, and it can do only what the caller's handler does. Any other opcode or global is a
 * CheckpointError naming it. Sizes, the stack and the memo are bounded.
 * Ref: CPython Lib/pickletools.py (opcode table) and Lib/pickle.py (`_Unpickler`).
 */
import { CheckpointError } from './types.js';

/** Values a pickle can build here. Containers are mutable while the pickle is read. */
export type PickleValue = null | boolean | number | bigint | string | Uint8Array | PyTuple | PyList | PyDict | PyGlobal | PyOpaque;

export type PickleKey = string | number | bigint | boolean | null;

export class PyTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}
export class PyList {
  readonly items: PickleValue[] = [];
}
export class PyDict {
  readonly map = new Map<PickleKey, PickleValue>();
  /** Instance state set by BUILD (e.g. an OrderedDict's `_metadata`); kept, never interpreted. */
  attrs: PickleValue = null;
}
/** Base class for objects the caller's handlers create (tensors, storages). */
export abstract class PyOpaque {
  abstract readonly typeName: string;
}

/** What an allowed global does when REDUCE / NEWOBJ calls it. */
export type GlobalCall = (args: readonly PickleValue[]) => PickleValue;

export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly call: GlobalCall | undefined,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

export interface UnpickleOptions {
  /** File the pickle came from (and entry, for errors). */
  readonly path: string;
  readonly what: string;
  /** Allowed globals by `module.name`; `undefined` means allowed as a value but not callable. */
  readonly globals: ReadonlyMap<string, GlobalCall | undefined>;
  /** BINPERSID: the persistent id → the object it stands for. */
  readonly persistentLoad?: (pid: PickleValue) => PickleValue;
}

export const MAX_PICKLE_BYTES = 256 * 2 ** 20;
const MAX_PICKLE_STACK = 1 << 20;
const MAX_PICKLE_MEMO = 1 << 22;
const MAX_LONG_BYTES = 64;
const MAX_GLOBAL_NAME = 256;

/** Names of opcodes we refuse, for the error message (CPython pickletools). */
const REFUSED: Record<number, string> = {
  0x49: 'INT',
  0x4c: 'LONG',
  0x46: 'FLOAT',
  0x53: 'STRING',
  0x54: 'BINSTRING',
  0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE',
  0x6c: 'LIST',
  0x64: 'DICT',
  0x69: 'INST',
  0x6f: 'OBJ',
  0x50: 'PERSID',
  0x70: 'PUT',
  0x67: 'GET',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x92: 'NEWOBJ_EX',
  0x8b: 'LONG4',
  0x8e: 'BINBYTES8',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

const isKey = (v: PickleValue): v is PickleKey => v === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof v);

/** Unpickle `data` under `opts`' allow-list; returns the value at STOP. */
export function unpickle(data: Uint8Array, opts: UnpickleOptions): PickleValue {
  if (data.length > MAX_PICKLE_BYTES) {
    throw new CheckpointError(opts.path, `${opts.what}: pickle of ${data.length} bytes exceeds the ${MAX_PICKLE_BYTES}-byte limit`);
  }
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const stack: PickleValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = 0;
  let opAt = 0;

  const fail = (detail: string): never => {
    throw new CheckpointError(opts.path, `${opts.what}: ${detail} (at byte ${opAt})`);
  };
  const need = (n: number): number => {
    if (n < 0 || pos + n > data.length) fail(`pickle ends early: need ${n} bytes at ${pos}, have ${data.length - pos}`);
    const at = pos;
    pos += n;
    return at;
  };
  const push = (v: PickleValue): void => {
    if (stack.length >= MAX_PICKLE_STACK) fail(`pickle stack exceeds ${MAX_PICKLE_STACK} items`);
    stack.push(v);
  };
  const pop = (): PickleValue => {
    if (stack.length === 0 || stack.length <= (marks.at(-1) ?? -1)) fail('pickle stack underflow');
    return stack.pop() as PickleValue;
  };
  const top = (): PickleValue => {
    if (stack.length === 0 || stack.length <= (marks.at(-1) ?? -1)) fail('pickle stack is empty');
    return stack[stack.length - 1] as PickleValue;
  };
  const popMark = (): PickleValue[] => {
    const m = marks.pop();
    if (m === undefined) fail('pickle has no MARK to pop to');
    return stack.splice(m as number);
  };
  const put = (i: number): void => {
    if (!memo.has(i) && memo.size >= MAX_PICKLE_MEMO) fail(`pickle memo exceeds ${MAX_PICKLE_MEMO} entries`);
    memo.set(i, top());
  };
  const get = (i: number): void => {
    if (!memo.has(i)) fail(`pickle memo has no entry ${i}`);
    push(memo.get(i) as PickleValue);
  };
  const str = (n: number): string => {
    const at = need(n);
    try {
      return utf8.decode(data.subarray(at, at + n));
    } catch {
      return fail('pickle string is not valid UTF-8');
    }
  };
  const line = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0 || end - pos > MAX_GLOBAL_NAME) fail('GLOBAL name is not a short newline-terminated line');
    const s = new TextDecoder('latin1').decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const global = (module: string, name: string): PyGlobal => {
    const q = `${module}.${name}`;
    if (!opts.globals.has(q)) {
      fail(`pickle global '${q}' is not allowed (allowed: ${[...opts.globals.keys()].join(', ')})`);
    }
    return new PyGlobal(module, name, opts.globals.get(q));
  };
  const call = (fn: PickleValue, args: PickleValue, op: string): PickleValue => {
    if (!(fn instanceof PyGlobal)) return fail(`${op} target is not a global`);
    if (!(args instanceof PyTuple)) return fail(`${op} arguments are not a tuple`);
    if (!fn.call) return fail(`${op}: '${fn.qualifiedName}' is allowed as a value but not as a call`);
    try {
      return fn.call(args.items);
    } catch (err) {
      if (err instanceof CheckpointError) throw err;
      return fail(`${op} ${fn.qualifiedName}: ${(err as Error).message}`);
    }
  };
  const setItems = (dict: PickleValue, kv: PickleValue[]): void => {
    if (!(dict instanceof PyDict)) fail('SETITEM(S) target is not a dict');
    if (kv.length % 2) fail('SETITEMS has an odd number of items');
    for (let i = 0; i < kv.length; i += 2) {
      const k = kv[i] as PickleValue;
      if (!isKey(k)) fail(`dict key of type ${k?.constructor?.name ?? typeof k} is not supported`);
      (dict as PyDict).map.set(k as PickleKey, kv[i + 1] as PickleValue);
    }
  };
  const intLE = (n: number): bigint => {
    const at = need(n);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[at + i]!);
    if (n > 0 && data[at + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
    return v;
  };
  const num = (v: bigint): number | bigint =>
    v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;

  for (;;) {
    opAt = pos;
    const op = data[need(1)]!;
    switch (op) {
      case 0x80: {
        // PROTO
        const v = data[need(1)]!;
        if (v > 5) fail(`pickle protocol ${v} is not supported (expected ≤ 5)`);
        break;
      }
      case 0x95: {
        // FRAME: a length hint only
        const n = dv.getBigUint64(need(8), true);
        if (n > BigInt(data.length - pos)) fail(`FRAME of ${n} bytes runs past the pickle`);
        break;
      }
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) fail(`STOP with ${stack.length} stack items and ${marks.length} open MARKs`);
        return pop();
      case 0x28:
        marks.push(stack.length);
        break; // MARK
      case 0x7d:
        push(new PyDict());
        break; // EMPTY_DICT
      case 0x5d:
        push(new PyList());
        break; // EMPTY_LIST
      case 0x29:
        push(new PyTuple([]));
        break; // EMPTY_TUPLE
      case 0x74:
        push(new PyTuple(popMark()));
        break; // TUPLE
      case 0x85:
        push(new PyTuple([pop()]));
        break; // TUPLE1
      case 0x86: {
        const b = pop();
        push(new PyTuple([pop(), b]));
        break;
      } // TUPLE2
      case 0x87: {
        const c = pop();
        const b = pop();
        push(new PyTuple([pop(), b, c]));
        break;
      } // TUPLE3
      case 0x4e:
        push(null);
        break; // NONE
      case 0x88:
        push(true);
        break; // NEWTRUE
      case 0x89:
        push(false);
        break; // NEWFALSE
      case 0x4a:
        push(dv.getInt32(need(4), true));
        break; // BININT
      case 0x4b:
        push(data[need(1)]!);
        break; // BININT1
      case 0x4d:
        push(dv.getUint16(need(2), true));
        break; // BININT2
      case 0x8a: {
        // LONG1
        const n = data[need(1)]!;
        if (n > MAX_LONG_BYTES) fail(`LONG1 of ${n} bytes`);
        push(num(intLE(n)));
        break;
      }
      case 0x47:
        push(dv.getFloat64(need(8), false));
        break; // BINFLOAT (big-endian)
      case 0x58:
        push(str(dv.getUint32(need(4), true)));
        break; // BINUNICODE
      case 0x8c:
        push(str(data[need(1)]!));
        break; // SHORT_BINUNICODE
      case 0x8d: {
        // BINUNICODE8
        const n = dv.getBigUint64(need(8), true);
        if (n > BigInt(data.length - pos)) fail(`BINUNICODE8 of ${n} bytes runs past the pickle`);
        push(str(Number(n)));
        break;
      }
      case 0x43: {
        const n = data[need(1)]!;
        const at = need(n);
        push(data.slice(at, at + n));
        break;
      } // SHORT_BINBYTES
      case 0x42: {
        const n = dv.getUint32(need(4), true);
        const at = need(n);
        push(data.slice(at, at + n));
        break;
      } // BINBYTES
      case 0x63: {
        const module = line();
        push(global(module, line()));
        break;
      } // GLOBAL
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        push(global(module as string, name as string));
        break;
      }
      case 0x71:
        put(data[need(1)]!);
        break; // BINPUT
      case 0x72:
        put(dv.getUint32(need(4), true));
        break; // LONG_BINPUT
      case 0x94:
        put(memo.size);
        break; // MEMOIZE
      case 0x68:
        get(data[need(1)]!);
        break; // BINGET
      case 0x6a:
        get(dv.getUint32(need(4), true));
        break; // LONG_BINGET
      case 0x30: // POP (a MARK when nothing was pushed after it)
        if (marks.length && marks.at(-1) === stack.length) marks.pop();
        else pop();
        break;
      case 0x31:
        popMark();
        break; // POP_MARK
      case 0x32:
        push(top());
        break; // DUP
      case 0x73: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      } // SETITEM
      case 0x75: {
        const kv = popMark();
        setItems(top(), kv);
        break;
      } // SETITEMS
      case 0x61: {
        const v = pop();
        const l = top();
        if (!(l instanceof PyList)) fail('APPEND target is not a list');
        (l as PyList).items.push(v);
        break;
      } // APPEND
      case 0x65: {
        // APPENDS
        const vs = popMark();
        const l = top();
        if (!(l instanceof PyList)) fail('APPENDS target is not a list');
        for (const v of vs) (l as PyList).items.push(v);
        break;
      }
      case 0x52: {
        const args = pop();
        push(call(pop(), args, 'REDUCE'));
        break;
      } // REDUCE
      case 0x81: {
        const args = pop();
        push(call(pop(), args, 'NEWOBJ'));
        break;
      } // NEWOBJ
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof PyDict) obj.attrs = state;
        else fail(`BUILD on ${obj instanceof PyOpaque ? obj.typeName : typeof obj} is not supported`);
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail('BINPERSID without a persistent-id loader');
        push(opts.persistentLoad!(pid));
        break;
      }
      default: {
        const name = REFUSED[op];
        fail(`pickle opcode 0x${op.toString(16).padStart(2, '0')}${name ? ` (${name})` : ''} is not supported`);
      }
    }
  }
}
