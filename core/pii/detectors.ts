/**
 * Detectors of personal data in free text (error messages, branch reasons,
 * string values inside JSON payloads): e-mail addresses and phone numbers.
 *
 * Phone numbers are recognised only in shapes people write them in
 * (international `+…`, North American `(555) 123-4567`, national numbers
 * with a leading 0 and separators, or any 8-15 digit number right after a
 * word like "phone" or "tel"), so that ids, UUIDs, amounts, dates, times,
 * IP and version numbers are not taken for phone numbers. A bare digit
 * string without such context is never a phone number here: the cost is a
 * missed `5551234567` in prose, the gain is no tokenized order numbers.
 */
import { memoizeShortKeys } from './key-memo.js';

export type DetectionKind = 'email' | 'phone';
export const DETECTION_KINDS: readonly DetectionKind[] = ['email', 'phone'];

export interface Detection {
  kind: DetectionKind;
  /** Offsets into the text, `end` exclusive. */
  start: number;
  end: number;
}

// Letters of every script but those written without blanks between words (Han, Kana, Hangul), and digits: an address
// inside CJK text (请发送至ann@example.com以便) is found without the words glued to it, and internationalized addresses
// (jörg@example.com, דוד@example.co.il) are found whole. Domain labels take any letter (info@公司.cn, ann@例え.jp).
/** A letter or digit of a blank-separated script (a class, for the `v` flag). */
const WORD = String.raw`[[\p{L}\p{M}\p{Nd}]--[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]]`;
const LABEL = String.raw`[\p{L}\p{Nd}](?:[\p{L}\p{M}\p{Nd}\-]{0,61}[\p{L}\p{M}\p{Nd}])?`;
/** The local part; an apostrophe inside it (o'neil), not first (a quote around the address is no part of it). */
const LOCAL = String.raw`[${WORD}._%+\-][${WORD}._%+'\-]{0,63}`;
/** `@`, or `%40` (an address URL-encoded in a logged request: ann%40example.com). */
const AT = String.raw`(?:@|%40)`;
/** A top-level domain: in a blank-separated script (`com`, `рф`), or in CJK (`中国`; CJK text glued after it is taken along, there is no blank to tell them apart). */
const TLD = String.raw`(?:${WORD}{2,24}(?![${WORD}\-])|[\p{L}\p{M}]{2,24}(?![\p{L}\p{M}\p{Nd}\-]))`;
const EMAIL = new RegExp(String.raw`(?<![${WORD}._%+\-])${LOCAL}${AT}(?:${LABEL}\.)+${TLD}`, 'gv');
/** A whole value that is an e-mail address. */
export const EMAIL_EXACT = new RegExp(String.raw`^${LOCAL}@(?:${LABEL}\.)+${TLD}$`, 'v');

// Boundaries shared by the phone shapes: not glued to letters, digits or id punctuation.
const BEFORE = String.raw`(?<![\w+\-./:#@])`;
const AFTER = String.raw`(?![\w@]|[\-./:]\d)`;
const PHONE_SHAPES: RegExp[] = [
  // International: +CC then groups, e.g. +49 30 1234 5678, +1-555-123-4567, +44 (0)20 7946 0958.
  new RegExp(String.raw`${BEFORE}\+\d{1,3}(?:[ .\-]?\(?\d{1,5}\)?){2,6}${AFTER}`, 'g'),
  // North American: (555) 123-4567, 555-123-4567, 555.123.4567, 555 123 4567, also after the country code 1 (1-555-123-4567).
  new RegExp(String.raw`${BEFORE}(?:1[ .\-])?(?:\(\d{3}\)[ ]?|\d{3}[ .\-])\d{3}[ .\-]\d{4}${AFTER}`, 'g'),
  // National with trunk prefix 0 and separators: 030 1234567, 0171-1234567, 020 7946 0958, 06 12 34 56 78, (020) 7946 0958.
  new RegExp(String.raw`${BEFORE}(?:0\d{1,4}|\(0\d{1,4}\))(?:[ /\-]\d{2,8}){1,4}${AFTER}`, 'g'),
];
/**
 * A bare number right after a phone word, also when the word is part of a
 * key: "phone 5551234567", "tel: 030-1234567", "phone_number: …",
 * "phoneNumber=…", "customer_phone: …", "mobile_no …". The word must not be
 * glued to letters around it ("smartphone", "telnet" are no phone words).
 */
const PHONE_CONTEXT = /(?<![A-Za-z])(?:telephone|phone|tel|mobile|cell|fax|whatsapp|sms|call)(?:[_ -]?(?:number|num|nr|no))?(?![A-Za-z])[^0-9+\n]{0,12}(\+?\d[\d .\-()]{6,20}\d)(?![\w@]|[\-./:]\d)/gi;
const PHONE_WORDS = new Set(['phone', 'telephone', 'mobile', 'tel', 'cell', 'cellphone', 'fax', 'whatsapp', 'sms', 'msisdn', 'telefon', 'telefono', 'telefone', 'handy']);
/** Words after a phone word that still name the number: `phone_number`, `phone_home`, `mobile_primary`, `phone_e164`. */
const PHONE_QUALIFIERS = new Set(['number', 'numbers', 'num', 'nr', 'no', 'home', 'work', 'office', 'business', 'personal', 'private', 'primary', 'secondary', 'main', 'alt', 'other', 'e164', 'intl', 'international', 'mobile', 'cell']);

/**
 * True when a key names a phone number: once digits are dropped from its
 * words (`phone1`) and qualifiers from its end (`_number`, `_home`,
 * `_primary`, `E164`), its last word is a phone word, also plural or run
 * together with `number` (`phones`, `phonenumber`): `phone`, `mobile`,
 * `customerPhone`, `contact_tel`, `fax_no`, `phone_home`. Not
 * `phone_verified_at`, `cell_id`, `smartphone_sku`, `mobile_app_build`,
 * `phone_country_code`: ids, times, counts and codes.
 */
export const isPhoneKey = memoizeShortKeys(phoneKeyWords);

function phoneKeyWords(key: string): boolean {
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .map((w) => (PHONE_QUALIFIERS.has(w) ? w : w.replace(/\d+$/, '')))
    .filter(Boolean);
  while (words.length > 1 && PHONE_QUALIFIERS.has(words[words.length - 1]!)) words.pop();
  const last = words[words.length - 1];
  if (last === undefined) return false;
  const word = last.replace(/numbers?$/, '').replace(/s$/, '');
  return PHONE_WORDS.has(word) || PHONE_WORDS.has(last);
}

/** True when `value`, written after a phone word (`phone: 5551234567`), is taken whole for a phone number. */
export function isPhoneAfterWord(value: string): boolean {
  const probe = `phone: ${value}`;
  return detectPii(probe, PHONE_ONLY).some((d) => d.start === 7 && d.end === probe.length);
}
const DATE_LIKE = /^\d{1,4}[ ./\-]\d{1,2}[ ./\-]\d{1,4}$/;

/** Digits of a phone number with its leading `+`, e.g. `+4930123456`. */
export function phoneDigits(text: string): string {
  return `${text.trim().startsWith('+') ? '+' : ''}${text.replace(/\D/g, '')}`;
}

function plausiblePhone(candidate: string): boolean {
  const digits = candidate.replace(/\D/g, '').length;
  if (digits < 8 || digits > 15) return false;
  if (DATE_LIKE.test(candidate.trim())) return false;
  return true;
}

/** True when the whole value is a phone number in one of the recognised shapes. */
export function isPhoneNumber(value: string): boolean {
  const v = value.trim();
  if (v.length > 40) return false;
  return detectPii(v, PHONE_ONLY).some((d) => d.start === 0 && d.end === v.length);
}
/** The phone detector alone. */
export const PHONE_ONLY: ReadonlySet<DetectionKind> = new Set(['phone']);

/**
 * Spans of e-mail addresses and phone numbers in `text`, sorted, never
 * overlapping (an e-mail address wins over digits inside it; of two
 * overlapping phone matches the longer one is kept).
 */
export function detectPii(text: string, kinds: ReadonlySet<DetectionKind> = new Set(DETECTION_KINDS)): Detection[] {
  // Cheap pre-checks: most text holds neither an @ nor a run of digits.
  const found: Detection[] = [];
  if (kinds.has('email') && (text.includes('@') || text.includes('%40'))) {
    for (const m of text.matchAll(EMAIL)) found.push({ kind: 'email', start: m.index, end: m.index + m[0].length });
  }
  if (kinds.has('phone') && /\d{2}/.test(text)) {
    const phones: Detection[] = [];
    for (const shape of PHONE_SHAPES) {
      for (const m of text.matchAll(shape)) {
        if (plausiblePhone(m[0])) phones.push({ kind: 'phone', start: m.index, end: m.index + m[0].length });
      }
    }
    for (const m of text.matchAll(PHONE_CONTEXT)) {
      const number = m[1]!;
      const start = m.index + m[0].length - number.length;
      if (plausiblePhone(number)) phones.push({ kind: 'phone', start, end: start + number.length });
    }
    phones.sort((a, b) => a.start - b.start || b.end - a.end);
    for (const p of phones) if (!found.some((f) => f.start < p.end && p.start < f.end)) found.push(p);
  }
  return found.sort((a, b) => a.start - b.start);
}
