import { deflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
// The desktop e2e's screenshot check (plain .mjs, outside src), tested here where a test runner is.
// @ts-expect-error: an untyped JavaScript module outside src
import { decodePng, isFlat } from "../../src-tauri/e2e/webdriver.mjs";

/** A PNG of `rows` (RGB triples), each row written with the filter type of its index mod 5. */
function encodePng(width: number, rows: number[][]): Buffer {
  const stride = width * 3;
  const raw: number[] = [];
  rows.forEach((row, y) => {
    const filter = y % 5;
    raw.push(filter);
    for (let x = 0; x < stride; x++) {
      const a = x >= 3 ? row[x - 3] : 0;
      const b = y > 0 ? rows[y - 1][x] : 0;
      const c = x >= 3 && y > 0 ? rows[y - 1][x - 3] : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = [0, a, b, (a + b) >> 1, paeth][filter];
      raw.push((row[x] - pred) & 0xff);
    }
  });
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    // The decoder does not check CRCs; zeros keep the fixture short.
    return Buffer.concat([len, Buffer.from(type, "latin1"), data, Buffer.alloc(4)]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(rows.length, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.from(raw))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

describe("the e2e screenshot check", () => {
  // A 6x5 image: a flat grey right half, and a left half of varied colours (so each row
  // filter's predictor matters), except its top-left pixel, which matches the grey.
  const width = 6;
  const grey = [244, 245, 247];
  const rows = Array.from({ length: 5 }, (_, y) =>
    Array.from({ length: width }, (_, x) => (x >= 3 || x + y === 0 ? grey : [(x * 97 + y * 31) % 256, (y * 53) % 256, 255 - x * 40])).flat(),
  );
  const png = decodePng(encodePng(width, rows));

  it("decodes every PNG row filter back to the pixels", () => {
    expect([png.width, png.height, png.channels]).toEqual([6, 5, 3]);
    expect([...png.px]).toEqual(rows.flat());
  });

  it("calls a region flat only when every pixel has one colour", () => {
    expect(isFlat(png, [3, 0, 3, 5])).toBe(true);
    expect(isFlat(png, [0, 0, 3, 5])).toBe(false);
    expect(isFlat(png, [0, 0, 1, 1])).toBe(true);
    expect(isFlat(png, [0, 0, 2, 1])).toBe(false);
    // Clipped to the image; an empty region is not called flat.
    expect(isFlat(png, [3, 0, 100, 100])).toBe(true);
    expect(isFlat(png, [10, 10, 5, 5])).toBe(false);
  });
});
