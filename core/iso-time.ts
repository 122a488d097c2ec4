/**
 * `2026-07-01` (midnight UTC) or an ISO 8601 date-time with a zone
 * (`2026-07-01T08:00:00Z`, `2026-07-01 08:00+02:00`, seconds and fraction
 * optional) as epoch ms, and whether only a date was given. Undefined for
 * anything else: Date.parse alone takes `5` for 2001-05-01 and `2026-02-30`
 * for 2 March, so the text is matched first and its calendar fields checked.
 * A date-time without `Z` or an offset is refused too: Date.parse reads it
 * as the local time of whichever machine runs the command, so the same
 * `--from` meant other instants on a laptop and on a server in UTC. Every
 * command's times go through here (archive verify, access-log verify,
 * dlq --since, report), so all of them read a time the same way.
 */
export function parseIsoInstant(text: string): { ms: number; dateOnly: boolean } | undefined {
  const t = text.trim();
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-](\d{2}):?(\d{2}))?)?$/i.exec(t);
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return undefined;
  if (m[4] === undefined) return { ms: date.getTime(), dateOnly: true };
  if (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6] ?? 0) > 59) return undefined;
  if (m[7] === undefined || (m[8] !== undefined && (Number(m[8]) > 23 || Number(m[9]) > 59))) return undefined;
  const ms = Date.parse(t.replace(' ', 'T').replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
  return Number.isNaN(ms) ? undefined : { ms, dateOnly: false };
}
