/**
 * `strftime`-style formatting of a date in the server's local time zone,
 * for the `/time` command. Supports the common C conversions; an unknown
 * conversion is left as written.
 *
 * @module
 */

const _DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const _MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

/** The default format: `2026-01-02 15:04:05 +0100`. */
export const DEFAULT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z";

function _p(n: number, w = 2, fill = "0"): string {
  return String(n).padStart(w, fill);
}

/** Formats `date` like C `strftime(format)`. */
export function strftime(format: string, date: Date = new Date()): string {
  const conv = (c: string): string | undefined => {
    const h = date.getHours();
    switch (c) {
      case "Y":
        return String(date.getFullYear());
      case "y":
        return _p(date.getFullYear() % 100);
      case "C":
        return _p(Math.floor(date.getFullYear() / 100));
      case "m":
        return _p(date.getMonth() + 1);
      case "d":
        return _p(date.getDate());
      case "e":
        return _p(date.getDate(), 2, " ");
      case "H":
        return _p(h);
      case "I":
        return _p(h % 12 === 0 ? 12 : h % 12);
      case "M":
        return _p(date.getMinutes());
      case "S":
        return _p(date.getSeconds());
      case "L":
        return _p(date.getMilliseconds(), 3);
      case "p":
        return h < 12 ? "AM" : "PM";
      case "a":
        return _DAYS[date.getDay()]!.slice(0, 3);
      case "A":
        return _DAYS[date.getDay()]!;
      case "b":
      case "h":
        return _MONTHS[date.getMonth()]!.slice(0, 3);
      case "B":
        return _MONTHS[date.getMonth()]!;
      case "u":
        return String(date.getDay() === 0 ? 7 : date.getDay());
      case "w":
        return String(date.getDay());
      case "j": {
        const start = new Date(date.getFullYear(), 0, 1);
        return _p(Math.floor((date.getTime() - start.getTime()) / 86_400_000) + 1, 3);
      }
      case "s":
        return String(Math.floor(date.getTime() / 1000));
      case "z": {
        const off = -date.getTimezoneOffset();
        const a = Math.abs(off);
        return `${off < 0 ? "-" : "+"}${_p(Math.floor(a / 60))}${_p(a % 60)}`;
      }
      case "Z":
        return Intl.DateTimeFormat(undefined, { timeZoneName: "short" })
          .formatToParts(date).find((p) => p.type === "timeZoneName")?.value ?? "";
      case "F":
        return strftime("%Y-%m-%d", date);
      case "T":
        return strftime("%H:%M:%S", date);
      case "R":
        return strftime("%H:%M", date);
      case "D":
      case "x":
        return strftime("%m/%d/%y", date);
      case "X":
        return strftime("%H:%M:%S", date);
      case "c":
        return strftime("%a %b %e %H:%M:%S %Y", date);
      case "n":
        return "\n";
      case "t":
        return "\t";
      case "%":
        return "%";
      default:
        return undefined;
    }
  };
  return format.replace(/%(.)/gs, (whole, c: string) => conv(c) ?? whole);
}
