/**
 * One CSV field (RFC 4180) of text that may come from producers: quoted when
 * it holds a quote, comma or line break or starts or ends with a blank; and
 * when a spreadsheet would run it as a formula (it starts with =, +, -, @, a
 * tab or a carriage return, and is not a number) it gets a leading `'`,
 * which spreadsheets show as text (the OWASP advice for CSV injection).
 */
export function csvText(s: string): string {
  const inert = /^[=+\-@\t\r]/.test(s) && !/^[+-]?\d+(\.\d+)?$/.test(s) ? `'${s}` : s;
  return /[",\r\n]|^\s|\s$/.test(inert) ? `"${inert.replace(/"/g, '""')}"` : inert;
}
